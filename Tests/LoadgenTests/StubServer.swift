import Foundation
import Hummingbird
import Synchronization

/// A stub HTTP server on a free loopback port: `GET /ping` answers at once, `GET /stall`
/// holds the request numbered `stallRequest` (1-based) for `stall` before answering.
final class StubServer: Sendable {
    let received = Atomic<Int>(0)
    let stallRequest: Int
    let stall: Duration

    init(stallRequest: Int = 0, stall: Duration = .seconds(1)) {
        self.stallRequest = stallRequest
        self.stall = stall
    }

    /// Runs `body` with the server's base URL, then stops the server.
    func serve<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let router = Router()
        router.get("/ping") { _, _ in
            self.received.add(1, ordering: .relaxed)
            return "pong"
        }
        router.get("/stall") { _, _ in
            let number = self.received.add(1, ordering: .relaxed).newValue
            if number == self.stallRequest { try await Task.sleep(for: self.stall) }
            return "pong"
        }
        router.get("/slow") { _, _ in
            self.received.add(1, ordering: .relaxed)
            try await Task.sleep(for: self.stall)
            return "pong"
        }
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) }
        )
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            var iterator = ports.makeAsyncIterator()
            let port = await iterator.next() ?? 0
            defer { group.cancelAll() }
            return try await body("http://127.0.0.1:\(port)")
        }
    }
}
