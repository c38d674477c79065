import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What went wrong starting or stopping a local server; `log` points at its output.
public struct LocalServerFailure: Error, CustomStringConvertible {
    public let description: String
}

/// Servers still running, stopped at process exit if a test did not stop them itself.
let runningServers = Mutex<[ObjectIdentifier: @Sendable () -> Void]>([:])
let exitHookInstalled = Mutex(false)

func registerForExit(_ object: AnyObject, _ stop: @escaping @Sendable () -> Void) {
    exitHookInstalled.withLock { installed in
        guard !installed else { return }
        installed = true
        atexit {
            let stops = runningServers.withLock { servers in
                defer { servers = [:] }
                return Array(servers.values)
            }
            stops.forEach { $0() }
        }
    }
    runningServers.withLock { $0[ObjectIdentifier(object)] = stop }
}

func unregisterForExit(_ object: AnyObject) {
    _ = runningServers.withLock { $0.removeValue(forKey: ObjectIdentifier(object)) }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw LocalServerFailure(description: "socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw LocalServerFailure(description: "bind() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func isListening(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
func waitUntil(timeout: Duration, _ what: String, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { throw LocalServerFailure(description: "timed out waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// Starts a command with output appended to `log`, default signal handling and an empty
/// signal mask (the test runner's threads may block signals the server must receive).
///
/// `posix_spawn` rather than Foundation's `Process`: on Linux, `Process` learns of its child's
/// exit through a descriptor the child inherits, so a command that leaves a daemon behind
/// (`pg_ctl start`) would never be seen to finish.
public func spawn(_ arguments: [String], log: URL) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, log.path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t(), terminating = sigset_t()
    sigemptyset(&noSignals)
    sigemptyset(&terminating)
    for signal in [SIGTERM, SIGINT, SIGQUIT, SIGPIPE, SIGCHLD] { sigaddset(&terminating, signal) }
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setsigdefault(&attributes, &terminating)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, environ)
    guard spawned == 0 else { throw LocalServerFailure(description: "cannot run \(arguments[0]): error \(spawned)") }
    return pid
}

/// Waits on a thread of its own until `pid` exits; returns its exit status.
public func exitStatus(of pid: pid_t) async -> Int32 {
    await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
        Thread.detachNewThread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1, errno == EINTR {}
            continuation.resume(returning: (status >> 8) & 0xff)
        }
    }
}

/// Runs a command to completion without blocking the caller's thread; output goes to `log`.
@discardableResult
func runCommand(_ arguments: [String], log: URL, check: Bool = true) async throws -> Int32 {
    let status = await exitStatus(of: try spawn(arguments, log: log))
    if check, status != 0 {
        throw LocalServerFailure(description: "\(arguments.joined(separator: " ")) exited \(status); see \(log.path)")
    }
    return status
}

/// Runs a command synchronously, for the exit hook.
func runCommandSynchronously(_ arguments: [String]) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return }
    process.waitUntilExit()
}

func makeTemporaryDirectory(_ prefix: String) throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}
