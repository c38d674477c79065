import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A private Redis on 127.0.0.1 for tests: no persistence, `DEBUG` enabled for local
/// clients (so a test can make it slow with `DEBUG SLEEP`).
public final class RedisServer: Sendable {
    public let port: Int
    public let directory: URL
    /// The running server's process id and the task that sees it exit.
    private let running = Mutex<(pid: pid_t, exit: Task<Int32, Never>)?>(nil)

    private init(port: Int, directory: URL) {
        self.port = port
        self.directory = directory
    }

    /// Starts a server on a free port.
    public static func launch() async throws -> RedisServer {
        let server = RedisServer(port: try freePort(), directory: try makeTemporaryDirectory("cloudbill-redis"))
        registerForExit(server) { [server] in
            if let pid = server.running.withLock({ $0?.pid }) { kill(pid, SIGKILL) }
            try? FileManager.default.removeItem(at: server.directory)
        }
        try await server.start()
        return server
    }

    /// Starts a server for `body` alone, and removes it afterwards.
    public static func with<T>(_ body: (RedisServer) async throws -> T) async throws -> T {
        let server = try await launch()
        do {
            let result = try await body(server)
            await server.destroy()
            return result
        } catch {
            await server.destroy()
            throw error
        }
    }

    /// Starts the stopped server on the same port.
    public func start() async throws {
        let pid = try spawn([
            "/usr/bin/redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", directory.path, "--enable-debug-command", "local", "--daemonize", "no",
        ], log: directory.appendingPathComponent("server.log"))
        running.withLock { $0 = (pid, Task { await exitStatus(of: pid) }) }
        try await waitUntil(timeout: .seconds(10), "redis-server listens on \(port)") { isListening(port) }
    }

    /// Stops the server (SIGTERM) and waits until it has exited.
    public func stop() async throws {
        guard let (pid, exit) = running.withLock({ $0 }) else { return }
        kill(pid, SIGTERM)
        _ = await exit.value
        running.withLock { $0 = nil }
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers.
    public func freeze() {
        if let pid = running.withLock({ $0?.pid }) { kill(pid, SIGSTOP) }
    }

    /// Lets a frozen server run again (SIGCONT).
    public func thaw() {
        if let pid = running.withLock({ $0?.pid }) { kill(pid, SIGCONT) }
    }

    /// Stops the server if it runs and deletes its files.
    public func destroy() async {
        try? await stop()
        unregisterForExit(self)
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `redis-cli` against this server, e.g. `["DEBUG", "SLEEP", "1"]`.
    public func cli(_ arguments: [String]) async throws {
        try await runCommand(
            ["/usr/bin/redis-cli", "-h", "127.0.0.1", "-p", String(port)] + arguments,
            log: directory.appendingPathComponent("cli.log")
        )
    }
}

private let sharedRedis = Mutex<Task<RedisServer, any Error>?>(nil)

extension RedisServer {
    /// One server for the whole test process, for tests that never stop it; removed at exit.
    public static func shared() async throws -> RedisServer {
        try await sharedRedis.withLock { task in
            if let task { return task }
            let launching = Task { try await launch() }
            task = launching
            return launching
        }.value
    }
}
