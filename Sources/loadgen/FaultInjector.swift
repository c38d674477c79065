import Foundation
import Synchronization

/// A fault applied or cleared, for the reports.
struct FaultEvent: Sendable, Codable, Equatable {
    /// Seconds from the run's start at which the call was made.
    let at: Double
    let action: String
    let succeeded: Bool
    let detail: String
    /// How long the call took: the fault is fully in place (or undone) only when it returns
    /// (a memory ballast is written page by page, `scripts/stack stop` waits for the exit).
    var callSeconds: Double = 0

    enum CodingKeys: String, CodingKey { case at, action, succeeded, detail, callSeconds = "call_s" }
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
        let began = ContinuousClock.now
        let (succeeded, detail): (Bool, String)
        switch action {
        case .service(let service, let kind, let parameters):
            let url = FaultCatalog.baseURL(of: service, gatewayURL: gatewayURL) + FaultCatalog.path(of: kind)
            (succeeded, detail) = await send("PUT", url, body: Array(FaultCatalog.plan(kind: kind, parameters: parameters)))
        case .stop(let component):
            (succeeded, detail) = await Self.stack(stackScript, ["stop", component])
        }
        var event = FaultEvent(at: time, action: "inject \(action)", succeeded: succeeded, detail: detail)
        event.callSeconds = Self.seconds(since: began)
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
            let began = ContinuousClock.now
            let (succeeded, detail): (Bool, String)
            switch action {
            case .service(let service, _, _):
                let url = FaultCatalog.baseURL(of: service, gatewayURL: gatewayURL) + FaultCatalog.path
                (succeeded, detail) = await send("DELETE", url, body: nil)
            case .stop(let component):
                (succeeded, detail) = await Self.stack(stackScript, ["start", component])
            }
            var event = FaultEvent(at: time, action: "clear \(action)", succeeded: succeeded, detail: detail)
            event.callSeconds = Self.seconds(since: began)
            events.append(event)
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

    static func seconds(since instant: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - instant
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// Runs `scripts/stack ARGS` on a Dispatch thread: it blocks for the seconds the script takes.
    static func stack(_ script: String, _ arguments: [String]) async -> (Bool, String) {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: runStack(script, arguments)) }
        }
    }

    /// `posix_spawn` and `waitpid` rather than Foundation's `Process`: on Linux, `Process`
    /// learns of its child's exit through a descriptor the child inherits, so a command that
    /// leaves a daemon behind (`scripts/stack start postgres` runs `pg_ctl start`) is never
    /// seen to finish. Output goes to a temporary file, read afterwards.
    static func runStack(_ script: String, _ arguments: [String]) -> (Bool, String) {
        let command = "\(script) \(arguments.joined(separator: " "))"
        let logPath = NSTemporaryDirectory() + "loadgen-stack-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { unlink(logPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // loadgen ignores SIGINT and SIGTERM itself (SignalTrap); the script must not inherit that.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t(), defaults = sigset_t()
        sigemptyset(&noSignals)
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGQUIT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([script] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, script, &actions, &attributes, argv, environ)
        guard spawned == 0 else { return (false, "\(command): cannot run: \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1, errno == EINTR {}
        let exited = (status & 0x7f) == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        let text = String(output.suffix(300)).trimmingCharacters(in: .whitespacesAndNewlines)
        return (code == 0, "\(command) → exit \(code) \(text)")
    }
}
