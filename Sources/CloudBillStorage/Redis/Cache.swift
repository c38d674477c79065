import CloudBillInstrumentation
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A Redis cache that never fails a request: a read that cannot reach Redis is a miss, a
/// write that cannot is skipped, and both are counted in `redis_errors_total`.
///
/// A delete that cannot reach Redis (an invalidation: the cached copy is out of date) is not
/// dropped: the key is remembered, reads of it miss, so the caller loads the truth, and
/// ``run()`` sends the delete again every second until Redis confirms it. Otherwise a Redis
/// outage of a few seconds would leave the old copy served for its whole TTL. At most
/// ``maximumUnconfirmedDeletes`` keys are remembered; past that, every read misses until one
/// removal of the cache's whole namespace succeeds.
///
/// Commands run on a dedicated `NIOThreadPool`, one thread per connection, never on Swift's
/// cooperative pool or an event loop. A broken connection reconnects on a later command, so
/// hits come back by themselves when Redis does. Keys and values are binary-safe. As a
/// `Service`, the cache closes its connections on shutdown.
public final class Cache: Service, Sendable {
    public let configuration: RedisConfiguration
    private let metrics: CacheMetrics
    private let threadPool: NIOThreadPool
    /// Connections not in use; as many as threads, so a running command always finds one.
    private let free: Mutex<[RedisConnection]>
    /// The share of reads sent to a key no one writes (fault `cache_bypass`), nil when none.
    private let readBypassRate = Mutex<Double?>(nil)
    /// Redis kept busy before a share of commands (fault `redis_slow`), nil when none.
    private let slowdown = Mutex<RedisSlowdown?>(nil)
    private let admission = Mutex(Admission())
    /// Keys whose delete Redis has not confirmed (see the type's description).
    private let unconfirmed = Mutex(UnconfirmedDeletes())

    /// The most deletes remembered while Redis cannot be reached.
    public static let maximumUnconfirmedDeletes = 10_000

    /// The prefix of the keys bypassed reads ask for; nothing writes under it.
    public static let bypassKeyPrefix = "cloudbill:fault:bypass:"

    public init(configuration: RedisConfiguration, metrics: CacheMetrics, logger: Logger = Logger(label: "cloudbill.redis")) {
        self.configuration = configuration
        self.metrics = metrics
        threadPool = NIOThreadPool(numberOfThreads: configuration.connections)
        threadPool.start()
        free = Mutex((0..<configuration.connections).map { _ in RedisConnection(configuration: configuration, logger: logger) })
    }

    /// Until graceful shutdown: once a second, the deletes Redis has not confirmed are sent
    /// again. Then closes the cache.
    public func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if !Task.isCancelled { await confirmDeletes() }
            }
        }
        await close()
    }

    /// Stops the threads once running commands finish and closes the connections.
    public func close() async {
        try? await threadPool.shutdownGracefully()
        free.withLock { $0.forEach { $0.close() } }
    }

    // MARK: Reads

    /// The value at `key`, recorded as a `hit` or `miss`; nil also when Redis cannot be reached.
    public func get(_ key: String, tenant: String?) async -> [UInt8]? {
        let start = ContinuousClock.now
        let value: [UInt8]?
        let isBypassed = readBypassRate.withLock { $0 }.map { $0 > Double.random(in: 0..<1) } ?? false
        switch try? await send([["GET", isBypassed ? Self.bypassKeyPrefix + key : key].bytes]).first {
        case .bulk(let bytes)?: value = isUnconfirmed(key) ? nil : bytes  // possibly out of date: a miss
        case .null?: value = nil
        default: return nil  // unreachable, or an error reply (counted in send)
        }
        metrics.record(value == nil ? .miss : .hit, tenant: tenant ?? "anonymous", seconds: (ContinuousClock.now - start).seconds)
        return value
    }

    /// The values at `keys` in one `MGET`, in order; each key counts as a `hit` or `miss` and
    /// records the round trip's time. All nil when Redis cannot be reached.
    public func get(_ keys: [String], tenant: String?) async -> [[UInt8]?] {
        guard !keys.isEmpty else { return [] }
        let start = ContinuousClock.now
        let bypass = readBypassRate.withLock { $0 }
        let command = ["MGET"] + keys.map { key in
            (bypass.map { $0 > Double.random(in: 0..<1) } ?? false) ? Self.bypassKeyPrefix + key : key
        }
        guard case .array(let replies)? = try? await send([command.bytes]).first, replies.count == keys.count else {
            return Array(repeating: nil, count: keys.count)
        }
        let seconds = (ContinuousClock.now - start).seconds
        let stale = unconfirmed.withLock { state in keys.map { state.covers($0) } }
        return zip(replies, stale).map { reply, isStale in
            guard case .bulk(let bytes) = reply, !isStale else {
                metrics.record(.miss, tenant: tenant ?? "anonymous", seconds: seconds)
                return nil
            }
            metrics.record(.hit, tenant: tenant ?? "anonymous", seconds: seconds)
            return bytes
        }
    }

    /// The value at `key` as UTF-8 text (invalid bytes repaired); see ``get(_:tenant:)``.
    public func getString(_ key: String, tenant: String?) async -> String? {
        await get(key, tenant: tenant).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Read-through: the cached value, or else `load`'s result, stored for `ttl`.
    ///
    /// `load` is the source of truth (PostgreSQL); its errors propagate, Redis's never do.
    public func cached(_ key: String, ttl: Duration, tenant: String?, load: () async throws -> [UInt8]) async throws -> [UInt8] {
        if let value = await get(key, tenant: tenant) { return value }
        let value = try await load()
        await set(key, value, ttl: ttl, tenant: tenant)
        return value
    }

    // MARK: Writes

    /// Stores `value` at `key` for `ttl` (`SET ... PX`), recorded as `set`.
    /// - Returns: whether Redis stored it.
    @discardableResult
    public func set(_ key: String, _ value: [UInt8], ttl: Duration, tenant: String?) async -> Bool {
        let start = ContinuousClock.now
        let milliseconds = String(max(1, ttl.roundedUpMilliseconds))
        guard case .status("OK")? = try? await send([[Array("SET".utf8), Array(key.utf8), value, Array("PX".utf8), Array(milliseconds.utf8)]]).first
        else { return false }
        metrics.record(.set, tenant: tenant ?? "anonymous", seconds: (ContinuousClock.now - start).seconds)
        return true
    }

    /// Stores each value for `ttl` in one pipelined round trip, each recorded as `set`.
    /// - Returns: how many Redis stored.
    @discardableResult
    public func set(_ entries: [(key: String, value: [UInt8])], ttl: Duration, tenant: String?) async -> Int {
        guard !entries.isEmpty else { return 0 }
        let start = ContinuousClock.now
        let milliseconds = Array(String(max(1, ttl.roundedUpMilliseconds)).utf8)
        let commands = entries.map { [Array("SET".utf8), Array($0.key.utf8), $0.value, Array("PX".utf8), milliseconds] }
        guard let replies = try? await send(commands) else { return 0 }
        let seconds = (ContinuousClock.now - start).seconds
        var stored = 0
        for case .status("OK") in replies {
            stored += 1
            metrics.record(.set, tenant: tenant ?? "anonymous", seconds: seconds)
        }
        return stored
    }

    @discardableResult
    public func set(_ key: String, _ value: String, ttl: Duration, tenant: String?) async -> Bool {
        await set(key, Array(value.utf8), ttl: ttl, tenant: tenant)
    }

    /// Removes `key`, recorded as `delete`. When Redis does not answer, the key is remembered:
    /// reads of it miss and the delete is sent again until Redis confirms it (see the type).
    /// - Returns: whether Redis answered (whether or not the key existed).
    @discardableResult
    public func delete(_ key: String, tenant: String?) async -> Bool {
        let start = ContinuousClock.now
        guard case .integer? = try? await send([["DEL", key].bytes]).first else {
            unconfirmed.withLock { $0.insert(key) }
            return false
        }
        metrics.record(.delete, tenant: tenant ?? "anonymous", seconds: (ContinuousClock.now - start).seconds)
        unconfirmed.withLock { $0.remove([key]) }
        return true
    }

    /// Sends again the deletes Redis has not confirmed, up to 1,000 keys in one `DEL` (or,
    /// after an overflow, removes the whole namespace); each confirmed key is forgotten.
    /// ``run()`` calls it every second.
    /// - Returns: how many deletes are still unconfirmed (an overflow counts as one more).
    @discardableResult
    public func confirmDeletes() async -> Int {
        let (keys, overflowed) = unconfirmed.withLock { state in (Array(state.keys.prefix(1_000)), state.overflowed) }
        if overflowed {
            if await removeKeys(matching: "*") != nil {
                unconfirmed.withLock { $0 = UnconfirmedDeletes() }
            }
        } else if !keys.isEmpty {
            let start = ContinuousClock.now
            if case .integer? = try? await send([(["DEL"] + keys).bytes]).first {
                metrics.record(.delete, tenant: "anonymous", seconds: (ContinuousClock.now - start).seconds)
                unconfirmed.withLock { $0.remove(keys) }
            }
        }
        return unconfirmed.withLock { $0.keys.count + ($0.overflowed ? 1 : 0) }
    }

    /// How many deletes Redis has not confirmed yet.
    public var unconfirmedDeletes: Int {
        unconfirmed.withLock { $0.keys.count }
    }

    private func isUnconfirmed(_ key: String) -> Bool {
        unconfirmed.withLock { $0.covers(key) }
    }

    /// Adds `amount` to the counter at `key` and returns its new value; the first increment
    /// starts a `window` after which the key expires (a fixed-window rate limit). Recorded as `set`.
    ///
    /// `INCRBY` and `PEXPIRE ... NX` (Redis 7) travel in one pipelined round trip. Unlike the other
    /// methods this one throws, because no value stands in for an unknown count: a rate
    /// limiter typically lets the request through when it catches ``CacheError``.
    public func incrementWithExpiry(_ key: String, by amount: Int = 1, window: Duration, tenant: String?) async throws(CacheError) -> Int {
        let start = ContinuousClock.now
        let milliseconds = String(max(1, window.roundedUpMilliseconds))
        let replies = try await send([["INCRBY", key, String(amount)].bytes, ["PEXPIRE", key, milliseconds, "NX"].bytes])
        guard case .integer(let count) = replies[0] else {
            if replies[0] == .error { throw .commandRejected }  // counted in send
            metrics.countError(.protocol)
            throw .protocolViolation
        }
        metrics.record(.set, tenant: tenant ?? "anonymous", seconds: (ContinuousClock.now - start).seconds)
        return count
    }

    // MARK: Injected faults

    /// Sends a share of reads (`rate` in [0, 1]) to `bypassKeyPrefix + key`, a key no one
    /// writes, so they really ask Redis and really miss; nil stops it. Writes are unchanged.
    public func bypassReads(rate: Double?) {
        readBypassRate.withLock { $0 = rate }
    }

    /// Makes Redis itself slow for a share of this cache's commands: before each of them, on
    /// the same connection and in the same round trip, a Lua script keeps Redis busy for the
    /// delay, as a slow command of another client would (Redis runs one at a time, so every
    /// client waits meanwhile). The commands' recorded durations include the wait; nil stops it.
    public func slowDown(_ slowdown: RedisSlowdown?) {
        self.slowdown.withLock { $0 = slowdown }
    }

    /// Removes every key of this cache's namespace matching the glob `pattern` (matched
    /// after ``RedisConfiguration/keyNamespace``, which the pattern may also spell out, so no
    /// pattern reaches another service's keys) with `SCAN` and `UNLINK`; each `UNLINK` is recorded as `delete`.
    /// - Returns: how many keys were removed, or nil when Redis could not be reached.
    public func removeKeys(matching pattern: String) async -> Int? {
        let namespace = configuration.keyNamespace
        let pattern = Self.escapedGlob(namespace) + (pattern.hasPrefix(namespace) ? String(pattern.dropFirst(namespace.count)) : pattern)
        var cursor = "0"
        var removed = 0
        repeat {
            guard case .array(let reply)? = try? await send([["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"].bytes]).first,
                  reply.count == 2, case .bulk(let next) = reply[0], case .array(let keys) = reply[1]
            else { return nil }
            cursor = String(decoding: next, as: UTF8.self)
            let names = keys.compactMap { key -> [UInt8]? in if case .bulk(let name) = key { name } else { nil } }
            guard !names.isEmpty else { continue }
            let start = ContinuousClock.now
            guard case .integer(let count)? = try? await send([[Array("UNLINK".utf8)] + names]).first else { return nil }
            metrics.record(.delete, tenant: "anonymous", seconds: (ContinuousClock.now - start).seconds)
            removed += count
        } while cursor != "0"
        return removed
    }

    /// `text` with Redis glob characters escaped, so that it matches only itself.
    static func escapedGlob(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if "*?[]\\^-".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }

    // MARK: Transport

    /// Sends pipelined commands on a free connection; counts a failure and error replies.
    ///
    /// Every wait is bounded: a command that finds the breaker open or the queue full fails
    /// at once, and one that waited a whole command timeout for a connection fails without
    /// being sent. So a Redis that stalls costs each caller at most about two command
    /// timeouts, and after ``RedisConfiguration/breakerThreshold`` failures in a row nothing
    /// at all until a probe finds it answering again.
    private func send(_ commands: [[[UInt8]]]) async throws(CacheError) -> [RedisReply] {
        var replies: [RedisReply]
        let slow = slowdown.withLock { $0 }.flatMap { $0.rate > Double.random(in: 0..<1) ? $0 : nil }
        let commands = slow.map { [$0.command] + commands } ?? commands
        do {
            try admission.withLock { (state) throws(CacheError) in try state.admit(now: .now, configuration: configuration) }
            let enqueued = ContinuousClock.now
            let deadline = enqueued + configuration.commandTimeout
            defer { admission.withLock { $0.pending -= 1 } }
            replies = try await threadPool.runIfActive { [self] () throws(CacheError) -> [RedisReply] in
                guard ContinuousClock.now < deadline else { throw .timedOut }
                guard let connection = free.withLock({ $0.popLast() }) else { throw .closed }
                defer { free.withLock { $0.append(connection) } }
                return try connection.pipeline(commands)
            }
            admission.withLock { $0.recordSuccess() }
        } catch {
            let failure = error as? CacheError ?? .closed  // runIfActive: the cache was closed
            if failure == .timedOut || failure == .unavailable {
                admission.withLock { $0.recordFailure(now: .now, configuration: configuration) }
            }
            metrics.countError(failure.errorType)
            throw failure
        }
        if slow != nil, !replies.isEmpty {
            // The script's own reply: an error there (scripts disabled) is the fault's, not a
            // command's.
            replies.removeFirst()
        }
        if replies.contains(.error) { metrics.countError(.command) }
        return replies
    }

    /// Whether the circuit breaker is open now (commands fail without reaching Redis).
    public var isShedding: Bool {
        admission.withLock { state in state.openUntil.map { ContinuousClock.now < $0 } ?? false }
    }
}

/// Keys whose delete Redis has not confirmed: a copy of each may still be cached.
struct UnconfirmedDeletes {
    var keys: Set<String> = []
    /// More than ``Cache/maximumUnconfirmedDeletes`` were to be remembered: any key may be stale.
    var overflowed = false

    func covers(_ key: String) -> Bool {
        overflowed || (!keys.isEmpty && keys.contains(key))
    }

    mutating func insert(_ key: String) {
        guard !overflowed else { return }
        if keys.count >= Cache.maximumUnconfirmedDeletes {
            keys = []
            overflowed = true
        } else {
            keys.insert(key)
        }
    }

    mutating func remove(_ confirmed: [String]) {
        guard !keys.isEmpty else { return }
        for key in confirmed { keys.remove(key) }
    }
}

/// The cache's admission control: the bounded queue and the circuit breaker.
struct Admission {
    /// Commands queued or running.
    var pending = 0
    var consecutiveFailures = 0
    /// While set and in the future, the breaker is open.
    var openUntil: ContinuousClock.Instant?

    mutating func admit(now: ContinuousClock.Instant, configuration: RedisConfiguration) throws(CacheError) {
        if let openUntil, now < openUntil { throw .shedding }
        guard pending < configuration.connections + configuration.maximumQueued else { throw .shedding }
        pending += 1
    }

    mutating func recordSuccess() {
        consecutiveFailures = 0
        openUntil = nil
    }

    /// Opens the breaker at the threshold; once past it, each failed probe opens it again.
    mutating func recordFailure(now: ContinuousClock.Instant, configuration: RedisConfiguration) {
        consecutiveFailures += 1
        if consecutiveFailures >= configuration.breakerThreshold {
            openUntil = now + configuration.breakerCooldown
        }
    }
}

extension Array where Element == String {
    fileprivate var bytes: [[UInt8]] { map { [UInt8]($0.utf8) } }
}

extension Cache {
    /// Whether Redis answers `PING` now; for readiness checks, recorded in no operation count.
    public func ping() async -> Bool {
        guard case .status("PONG")? = try? await send([["PING"].bytes]).first else { return false }
        return true
    }
}

/// Redis kept busy before a share of commands: the injected fault `redis_slow`.
public struct RedisSlowdown: Sendable, Equatable {
    public var milliseconds: Int
    /// The share of commands delayed, in [0, 1].
    public var rate: Double

    /// Below the 250 ms command timeout: a slowed command, or one of another client queued
    /// behind the script, still gets its answer in time.
    public static let maximumMilliseconds = 200

    public init(milliseconds: Int, rate: Double) {
        self.milliseconds = milliseconds
        self.rate = rate
    }

    /// `EVAL` of a script that spins on Redis' own clock until the delay has passed.
    var command: [[UInt8]] {
        [
            "EVAL",
            """
            local t = redis.call('TIME') local stop = t[1] * 1000000 + t[2] + tonumber(ARGV[1]) * 1000 \
            repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= stop return 1 -- cloudbill fault: redis_slow
            """,
            "0", String(milliseconds),
        ].map { Array($0.utf8) }
    }
}
