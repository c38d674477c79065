import Foundation
import Synchronization

/// A fault applied or cleared, for the reports.
struct FaultEvent: Sendable, Codable, Equatable {
    let at: Double
    let action: String
    let succeeded: Bool
    let detail: String
}

/// Applies a scenario's faults and remembers them, so that a clear phase, the run's end or
/// an interruption undoes every one.
final class FaultInjector: Sendable {
    let gatewayURL: String
    let adminToken: String
    let stackScript: String
    let transport: Transport
    /// Guards what is applied and the event log.
    private let state = Mutex<(applied: [FaultAction], events: [FaultEvent])>(([], []))

    init(gatewayURL: String, adminToken: String, stackScript: String, transport: Transport) {
        self.gatewayURL = gatewayURL
        self.adminToken = adminToken
        self.stackScript = stackScript
        self.transport = transport
    }

    var events: [FaultEvent] { state.withLock { $0.events } }
    var hasApplied: Bool { state.withLock { !$0.applied.isEmpty } }

    func apply(_ action: FaultAction, at time: Double) async -> FaultEvent {
        let (succeeded, detail): (Bool, String)
        switch action {
        case .service(let service, let kind, let parameters):
            let url = FaultCatalog.baseURL(of: service, gatewayURL: gatewayURL) + FaultCatalog.path(of: kind)
            (succeeded, detail) = await send("PUT", url, body: Array(FaultCatalog.plan(kind: kind, parameters: parameters)))
        case .stop(let component):
            (succeeded, detail) = await Self.stack(stackScript, ["stop", component])
        }
        let event = FaultEvent(at: time, action: "inject \(action)", succeeded: succeeded, detail: detail)
        state.withLock { state in
            state.applied.append(action)
            state.events.append(event)
        }
        return event
    }

    /// Undoes every applied fault, the last first.
    func clearAll(at time: Double) async -> [FaultEvent] {
        let applied = state.withLock { state in defer { state.applied = [] }; return state.applied }
        var events: [FaultEvent] = []
        for action in applied.reversed() {
            let (succeeded, detail): (Bool, String)
            switch action {
            case .service(let service, _, _):
                let url = FaultCatalog.baseURL(of: service, gatewayURL: gatewayURL) + FaultCatalog.path
                (succeeded, detail) = await send("DELETE", url, body: nil)
            case .stop(let component):
                (succeeded, detail) = await Self.stack(stackScript, ["start", component])
            }
            events.append(FaultEvent(at: time, action: "clear \(action)", succeeded: succeeded, detail: detail))
        }
        state.withLock { $0.events.append(contentsOf: events) }
        return events
    }

    private func send(_ method: String, _ url: String, body: [UInt8]?) async -> (Bool, String) {
        do {
            var headers = [(FaultCatalog.adminHeader, adminToken)]
            if body != nil { headers.append(("Content-Type", "application/json")) }
            let answer = try await transport.send(method, url, headers: headers, body: body)
            let text = String(decoding: answer.body.prefix(300), as: UTF8.self)
            return ((200..<300).contains(answer.status), "\(method) \(url) → \(answer.status) \(text)")
        } catch {
            return (false, "\(method) \(url) → \(error)")
        }
    }

    /// Runs `scripts/stack ARGS` on a Dispatch thread: it blocks for the seconds the script takes.
    static func stack(_ script: String, _ arguments: [String]) async -> (Bool, String) {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: runStack(script, arguments)) }
        }
    }

    static func runStack(_ script: String, _ arguments: [String]) -> (Bool, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: script)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do {
            try process.run()
        } catch {
            return (false, "\(script) \(arguments.joined(separator: " ")): \(error)")
        }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: output.suffix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return (process.terminationStatus == 0, "\(script) \(arguments.joined(separator: " ")) → exit \(process.terminationStatus) \(text)")
    }
}
