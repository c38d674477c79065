import CloudBillInstrumentation
import CloudBillStorage
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The faults a service has injected into itself: it applies plans through the real
/// mechanisms (the pool, the cache, memory, a CPU thread, the request path), clears them on
/// request or when their `duration_s` runs out, and keeps `cloudbill_fault_active` true.
///
/// Request paths ask it synchronously (``shouldInject(_:)``, ``shouldFailDelivery(on:)``);
/// changes are serialised, and a plan that cannot be applied changes nothing. As a `Service`,
/// it clears every fault on shutdown.
public actor FaultInjector: Service {
    public nonisolated let service: String
    private nonisolated let metrics: ServiceMetrics
    private nonisolated let database: ConnectionPool?
    private nonisolated let cache: Cache?
    private nonisolated let logger: Logger
    /// What the request paths read; written only by this actor.
    private nonisolated let settings = Mutex<[FaultKind: FaultSetting]>([:])
    private nonisolated let capabilityState: Mutex<FaultCapabilities>

    private var active: [FaultKind: ActiveFault] = [:]
    private var ballast: MemoryBallast?
    private var burner: CPUBurner?
    private var blocker: EventLoopBlocker?
    private var leak: DescriptorLeak?
    private nonisolated let eventLoopGroup: any EventLoopGroup
    private var generation: UInt64 = 0
    /// Serialises changes across the suspension points inside them.
    private var isChanging = false
    private var queuedChanges: [CheckedContinuation<Void, Never>] = []

    private struct ActiveFault {
        var fault: Fault
        var generation: UInt64
        var startedAt: Date
        var expiresAt: Date?
        /// The expiry timer and, for `cache_flush` with an interval, the flusher.
        var tasks: [Task<Void, Never>]
    }

    /// The environment variable holding the largest `memory_ballast` accepted, in MiB.
    public static let ballastLimitVariable = "CLOUDBILL_FAULT_BALLAST_LIMIT_MB"
    public static let defaultBallastLimitMegabytes = 2560

    init(
        metrics: ServiceMetrics, database: ConnectionPool?, cache: Cache?, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        capabilities: FaultCapabilities, logger: Logger
    ) {
        self.service = capabilities.service
        self.eventLoopGroup = eventLoopGroup
        self.metrics = metrics
        self.database = database
        self.cache = cache
        self.logger = logger
        self.capabilityState = Mutex(capabilities)
        for kind in FaultKind.allCases where capabilities.reasonUnsupported(kind) == nil {
            metrics.setFault(kind.rawValue, active: false)
        }
    }

    /// The ballast ceiling from `CLOUDBILL_FAULT_BALLAST_LIMIT_MB`, or the default.
    public static func ballastLimitMegabytes(environment: [String: String]) throws -> Int {
        guard let text = environment[ballastLimitVariable], !text.isEmpty else { return defaultBallastLimitMegabytes }
        guard let value = Int(text), value >= 0 else {
            throw FaultConfigurationError(description: "\(ballastLimitVariable) must be a whole number of MiB, not '\(text)'")
        }
        return value
    }

    nonisolated var capabilities: FaultCapabilities { capabilityState.withLock { $0 } }

    /// Records the service's route templates once its router is complete.
    nonisolated func registerRoutes(_ routes: Set<String>) {
        capabilityState.withLock { $0.routes = routes }
    }

    /// Waits for graceful shutdown, then clears every fault.
    public func run() async throws {
        try? await gracefulShutdown()
        await clearAll()
    }

    // MARK: Request paths

    /// Whether this event is hit by the rate fault `kind` (`payment_declines`,
    /// `processor_errors`, `invoice_failures`): a fresh draw against its `rate`.
    public nonisolated func shouldInject(_ kind: FaultKind) -> Bool {
        switch settings.withLock({ $0[kind] }) {
        case .paymentDeclines(let rate)?, .processorErrors(let rate)?, .invoiceFailures(let rate)?:
            rate > Double.random(in: 0..<1)
        default:
            false
        }
    }

    /// Whether the delivery of one notification on `channel` fails (`notification_failures`).
    public nonisolated func shouldFailDelivery(on channel: BusinessMetrics.NotificationType) -> Bool {
        guard case .notificationFailures(let rate, let channels)? = settings.withLock({ $0[.notificationFailures] }),
              channels.contains(channel)
        else { return false }
        return rate > Double.random(in: 0..<1)
    }

    /// What `http_errors` and `latency` do to one request of `route` (nil: no route matched).
    nonisolated func requestFaults(route: String?, tenant: String) -> (delay: Duration?, status: Int?) {
        let (errors, latency) = settings.withLock { ($0[.httpErrors], $0[.latency]) }
        func applies(_ routes: Set<String>?) -> Bool {
            guard let routes else { return true }
            return route.map(routes.contains) ?? false
        }
        var delay: Duration?
        if case .latency(let distribution, let rate, let routes)? = latency, applies(routes), rate > Double.random(in: 0..<1) {
            delay = distribution.sample()
        }
        var status: Int?
        if case .httpErrors(let rate, let code, let routes, let tenants)? = errors, applies(routes),
           tenants?.contains(tenant) ?? true, rate > Double.random(in: 0..<1) {
            status = code
        }
        return (delay, status)
    }

    // MARK: Changes

    /// Applies `faults`: with `replacingAll`, as the whole plan (kinds it leaves out are
    /// cleared); otherwise only the kinds it names change. A kind already active starts over
    /// with the new parameters and duration.
    /// - Throws: ``BallastError`` when the ballast cannot be mapped; nothing has changed then.
    func apply(_ faults: [FaultKind: Fault], replacingAll: Bool) async throws {
        await beginChange()
        defer { endChange() }
        // The one step that can fail comes before anything else changes. The old ballast is
        // freed first, so that a new one never doubles what the process holds; if the new
        // mapping fails, the ballast fault is cleared.
        var newBallast: MemoryBallast?
        if case .memoryBallast(let megabytes)? = faults[.memoryBallast]?.setting, ballast?.megabytes != megabytes {
            if ballast != nil { await deactivate(.memoryBallast, reason: "replaced") }
            newBallast = try await MemoryBallast.allocate(megabytes: megabytes)
        }
        if replacingAll {
            for kind in active.keys.sorted() where faults[kind] == nil { await deactivate(kind, reason: "replaced") }
        }
        for (_, fault) in faults.sorted(by: { $0.key < $1.key }) {
            await activate(fault, ballast: newBallast)
        }
    }

    /// Clears one fault; nothing happens when it is not active.
    func clear(_ kind: FaultKind) async {
        await beginChange()
        defer { endChange() }
        await deactivate(kind, reason: "cleared")
    }

    /// Clears every fault.
    func clearAll() async {
        await beginChange()
        defer { endChange() }
        for kind in active.keys.sorted() { await deactivate(kind, reason: "cleared") }
    }

    private func expire(_ kind: FaultKind, generation: UInt64) async {
        await beginChange()
        defer { endChange() }
        guard active[kind]?.generation == generation else { return }
        await deactivate(kind, reason: "expired")
    }

    private func beginChange() async {
        guard isChanging else {
            isChanging = true
            return
        }
        await withCheckedContinuation { queuedChanges.append($0) }
    }

    private func endChange() {
        if queuedChanges.isEmpty { isChanging = false } else { queuedChanges.removeFirst().resume() }
    }

    private func activate(_ fault: Fault, ballast newBallast: MemoryBallast?) async {
        let kind = fault.setting.kind
        active[kind]?.tasks.forEach { $0.cancel() }
        generation += 1
        let generation = self.generation
        var tasks: [Task<Void, Never>] = []
        switch fault.setting {
        case .dbSlow(let milliseconds, let rate, let timeout):
            database?.injectQueryDelay(.init(milliseconds: milliseconds, rate: rate, timeoutMilliseconds: timeout))
        case .dbPoolLimit(let maximum):
            database?.limitConnections(to: maximum)
        case .cacheBypass(let rate):
            cache?.bypassReads(rate: rate)
        case .redisSlow(let milliseconds, let rate):
            cache?.slowDown(RedisSlowdown(milliseconds: milliseconds, rate: rate))
        case .cacheFlush(let pattern, let interval):
            await flush(pattern)
            if let interval {
                tasks.append(Task {
                    while (try? await Task.sleep(for: interval)) != nil {
                        await self.flush(pattern)
                    }
                })
            }
        case .memoryBallast:
            if let newBallast {
                let old = ballast
                ballast = newBallast
                if let old { await release(old) }
            }
        case .cpuBurn(let share):
            if burner?.share != share {
                burner?.stop()
                burner = CPUBurner(share: share)
            }
        case .eventLoopBlock(let milliseconds):
            if blocker?.milliseconds != milliseconds {
                blocker?.stop()
                blocker = EventLoopBlocker(loop: eventLoopGroup.next(), milliseconds: milliseconds)
            }
        case .fdLeak(let share, let perSecond):
            if leak?.share != share || leak?.perSecond != perSecond {
                leak?.stop()
                leak = DescriptorLeak(share: share, perSecond: perSecond)
            }
        case .httpErrors, .latency, .paymentDeclines, .processorErrors, .invoiceFailures, .notificationFailures:
            break  // read on the request paths
        }
        settings.withLock { $0[kind] = fault.setting }
        if let duration = fault.duration {
            tasks.append(Task {
                guard (try? await Task.sleep(for: duration)) != nil else { return }
                await self.expire(kind, generation: generation)
            })
        }
        let now = Date()
        active[kind] = ActiveFault(
            fault: fault, generation: generation, startedAt: now,
            expiresAt: fault.duration.map { now.addingTimeInterval($0.seconds) }, tasks: tasks
        )
        metrics.setFault(kind.rawValue, active: true)
        logger.notice("Fault injected", metadata: [
            "fault": "\(kind.rawValue)",
            "parameters": "\(Self.render(fault.setting.parameters))",
            "duration_s": "\(fault.duration.map { String($0.seconds) } ?? "none")",
        ])
    }

    private func deactivate(_ kind: FaultKind, reason: String) async {
        guard let entry = active.removeValue(forKey: kind) else { return }
        entry.tasks.forEach { $0.cancel() }
        settings.withLock { $0[kind] = nil }
        switch kind {
        case .dbSlow: database?.injectQueryDelay(nil)
        case .dbPoolLimit: database?.limitConnections(to: nil)
        case .cacheBypass: cache?.bypassReads(rate: nil)
        case .redisSlow: cache?.slowDown(nil)
        case .eventLoopBlock:
            blocker?.stop()
            blocker = nil
        case .fdLeak:
            leak?.stop()
            leak = nil
        case .memoryBallast:
            if let old = ballast {
                ballast = nil
                await release(old)
            }
        case .cpuBurn:
            burner?.stop()
            burner = nil
        case .httpErrors, .latency, .cacheFlush, .paymentDeclines, .processorErrors, .invoiceFailures, .notificationFailures:
            break
        }
        metrics.setFault(kind.rawValue, active: false)
        logger.notice("Fault \(reason)", metadata: ["fault": "\(kind.rawValue)"])
    }

    private func flush(_ pattern: String) async {
        guard let cache else { return }
        if let removed = await cache.removeKeys(matching: pattern) {
            logger.info("Fault cache_flush removed keys", metadata: ["pattern": "\(pattern)", "removed": "\(removed)"])
        } else {
            logger.warning("Fault cache_flush could not reach Redis", metadata: ["pattern": "\(pattern)"])
        }
    }

    /// Unmaps on NIO's blocking-work threads: a large unmap takes a while.
    private func release(_ ballast: MemoryBallast) async {
        do {
            try await NIOThreadPool.singleton.runIfActive { ballast.release() }
        } catch {
            ballast.release()
        }
    }

    // MARK: State

    /// The active faults as `GET /admin/faults` shows them.
    func state() -> JSONValue {
        let now = Date()
        var faults: [String: JSONValue] = [:]
        for (kind, entry) in active {
            var fields = entry.fault.setting.parameters
            fields["started_at"] = .string(Self.timestamp(entry.startedAt))
            if let duration = entry.fault.duration, let expiresAt = entry.expiresAt {
                fields["duration_s"] = .number(duration.seconds)
                fields["expires_at"] = .string(Self.timestamp(expiresAt))
                fields["remaining_s"] = .number(max(0, (expiresAt.timeIntervalSince(now) * 1000).rounded() / 1000))
            }
            faults[kind.rawValue] = .object(fields)
        }
        return .object(["service": .string(service), "faults": .object(faults)])
    }

    private static func timestamp(_ date: Date) -> String {
        date.ISO8601Format()
    }

    private static func render(_ parameters: [String: JSONValue]) -> String {
        guard let data = try? JSONResponse.encoder.encode(JSONValue.object(parameters)) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A fault setting of the environment that cannot be used.
public struct FaultConfigurationError: Error, CustomStringConvertible {
    public let description: String
}
