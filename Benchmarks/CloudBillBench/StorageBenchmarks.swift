import CloudBillInstrumentation
import CloudBillStorage
import Foundation
import NIOPosix

// Storage throughput next to the servers' own benchmark tools, on the same server and with
// the same number of clients. Called by `cloudbill-bench`; see docs/benchmarks.md ("Storage").

/// Prints the pool's `SELECT 1` throughput at each pool size next to `pgbench` running a
/// `SELECT 1` script with as many clients as the pool has connections, over the extended
/// protocol with unnamed statements (`-M extended`, what `PQexecParams` speaks) and with
/// prepared statements (`-M prepared`), and their ratios. Each pool run is followed by the
/// two pgbench runs, so all three see the same machine.
/// - Parameter connectionString: a libpq connection string; pgbench receives it as its dbname.
func runPoolBenchmark(
    connectionString: String,
    poolSizes: [Int] = [8, 16],
    duration: Duration = .seconds(5),
    pgbench: String = "/usr/lib/postgresql/15/bin/pgbench"
) async throws {
    let script = FileManager.default.temporaryDirectory.appendingPathComponent("cloudbill-select1-\(getpid()).sql")
    try "SELECT 1;\n".write(to: script, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: script) }
    print("PostgreSQL SELECT 1, \(duration) per run")
    for size in poolSizes {
        let pool = try await poolThroughput(connectionString: connectionString, size: size, duration: duration)
        for mode in ["extended", "prepared"] {
            let output = try await runTool(pgbench, [
                "-n", "-M", mode, "-f", script.path, "-c", String(size), "-j", String(min(size, ProcessInfo.processInfo.activeProcessorCount)),
                "-T", String(duration.components.seconds), connectionString,
            ])
            guard let reference = firstNumber(after: "tps = ", in: output) else {
                print("pgbench printed no tps:\n\(output)")
                continue
            }
            report("pool size \(size)", pool, "pgbench -c \(size) -M \(mode)", reference)
        }
    }
}

/// Prints the cache's `GET` and the gateway rate limiter's step (`INCR` and `PEXPIRE` in one
/// round trip) with the cache's production connection count and 16 concurrent callers, next
/// to `redis-benchmark` with as many connections (`-t get`, and `INCR` on one key), and their
/// ratios.
func runRedisBenchmark(
    host: String = "127.0.0.1",
    port: Int = 6379,
    password: String? = nil,
    callers: Int = 16,
    duration: Duration = .seconds(5),
    redisBenchmark: String = "/usr/bin/redis-benchmark"
) async throws {
    let metrics = ServiceMetrics(service: "cloudbill-bench", databasePool: false)
    let configuration = RedisConfiguration(host: host, port: port, password: password)
    let connections = configuration.connections
    let cache = Cache(configuration: configuration, metrics: metrics.cache)
    let key = "cloudbill-bench:get"
    guard await cache.set(key, "xxx", ttl: .seconds(600), tenant: nil) else {
        print("Redis at \(host):\(port) is unreachable")
        await cache.close()
        return
    }
    var authentication: [String] = []
    if let password { authentication = ["-a", password] }
    print("Redis, the cache's \(connections) connections (\(callers) callers), \(duration) per run")

    let gets = try await throughput(callers: callers, duration: duration) {
        guard await cache.get(key, tenant: "bench") != nil else { throw CacheError.unavailable }
    }
    let getOutput = try await runTool(redisBenchmark, ["-h", host, "-p", String(port)] + authentication + [
        "-t", "get", "-c", String(connections), "-n", String(max(100_000, Int(gets * duration.seconds))), "-d", "3", "-q",
    ])
    if let reference = firstNumber(after: "GET: ", in: getOutput) {
        report("cache.get", gets, "redis-benchmark -t get -c \(connections)", reference)
    } else {
        print("redis-benchmark printed no rate:\n\(getOutput)")
    }

    let steps = try await throughput(callers: callers, duration: duration) {
        _ = try await cache.incrementWithExpiry("ratelimit:bench:\(Int(Date().timeIntervalSince1970))", window: .seconds(2), tenant: "bench")
    }
    let incrOutput = try await runTool(redisBenchmark, ["-h", host, "-p", String(port)] + authentication + [
        "-c", String(connections), "-n", String(max(100_000, Int(steps * duration.seconds))), "-q", "INCR", "cloudbill-bench:incr",
    ])
    if let reference = firstNumber(after: ": ", in: incrOutput) {
        report("rate-limit step", steps, "redis-benchmark INCR -c \(connections)", reference)
    } else {
        print("redis-benchmark printed no rate:\n\(incrOutput)")
    }
    await cache.close()
}

private func poolThroughput(connectionString: String, size: Int, duration: Duration) async throws -> Double {
    let metrics = ServiceMetrics(service: "cloudbill-bench")
    let pool = ConnectionPool(
        configuration: PostgresConfiguration(connectionString: connectionString, maximumConnections: size),
        metrics: metrics.database
    )
    // Open every connection before the clock starts, as pgbench does.
    _ = try await throughput(callers: size, duration: .milliseconds(200)) {
        _ = try await pool.query("select", tenant: nil, "SELECT 1")
    }
    let rate = try await throughput(callers: size, duration: duration) {
        _ = try await pool.query("select", tenant: "bench", "SELECT 1")
    }
    await pool.close()
    return rate
}

/// Calls `operation` from `callers` concurrent tasks for `duration`; returns calls per second.
private func throughput(callers: Int, duration: Duration, _ operation: @escaping @Sendable () async throws -> Void) async throws -> Double {
    let start = ContinuousClock.now
    let deadline = start + duration
    let calls = try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<callers {
            group.addTask {
                var calls = 0
                while ContinuousClock.now < deadline {
                    try await operation()
                    calls += 1
                }
                return calls
            }
        }
        return try await group.reduce(0, +)
    }
    return Double(calls) / (ContinuousClock.now - start).seconds
}

private func report(_ ours: String, _ ourRate: Double, _ tool: String, _ toolRate: Double) {
    func rate(_ value: Double) -> String { String(format: "%9.0f/s", value) }
    print("  \(ours.padding(toLength: 16, withPad: " ", startingAt: 0)) \(rate(ourRate))   "
        + "\(tool.padding(toLength: 38, withPad: " ", startingAt: 0)) \(rate(toolRate))   ratio \(String(format: "%.2f", ourRate / toolRate))")
}

/// Runs a tool to completion and returns what it printed.
///
/// Spawned with an empty signal mask: threads of NIO's pool block signals, and pgbench's `-T`
/// deadline is a SIGALRM that a child inheriting that mask would never receive.
private func runTool(_ path: String, _ arguments: [String]) async throws -> String {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("cloudbill-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out")
    defer { try? FileManager.default.removeItem(at: output) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, path, &actions, &attributes, argv, environ) == 0 else { return "cannot run \(path)" }
    try await NIOThreadPool.singleton.runIfActive { [pid] in
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1, errno == EINTR {}
    }
    return (try? String(contentsOf: output, encoding: .utf8)) ?? ""
}

private func firstNumber(after marker: String, in text: String) -> Double? {
    guard let range = text.range(of: marker, options: .backwards) else { return nil }
    return Double(text[range.upperBound...].prefix { $0.isNumber || $0 == "." })
}

extension Duration {
    fileprivate var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
