/// A fault a service can inject, named as the admin API and `cloudbill_fault_active{fault}` name it.
public enum FaultKind: String, CaseIterable, Sendable, Comparable {
    case httpErrors = "http_errors"
    case latency
    case dbSlow = "db_slow"
    case dbPoolLimit = "db_pool_limit"
    case cacheFlush = "cache_flush"
    case cacheBypass = "cache_bypass"
    case redisSlow = "redis_slow"
    case paymentDeclines = "payment_declines"
    case processorErrors = "processor_errors"
    case invoiceFailures = "invoice_failures"
    case notificationFailures = "notification_failures"
    case memoryBallast = "memory_ballast"
    case cpuBurn = "cpu_burn"
    case eventLoopBlock = "event_loop_block"
    case fdLeak = "fd_leak"

    /// Faults that act in one service's own domain code, which declares them when it is built.
    public static let domainFaults: Set<FaultKind> = [.paymentDeclines, .processorErrors, .invoiceFailures, .notificationFailures]

    public static func < (a: FaultKind, b: FaultKind) -> Bool { a.rawValue < b.rawValue }
}

/// What a service offers the faults to act on; a plan naming a fault the service cannot
/// host is rejected.
struct FaultCapabilities: Sendable {
    var service: String
    var hasDatabase: Bool
    var hasCache: Bool
    /// The configured pool size: `db_pool_limit` may only go below it.
    var maximumConnections: Int
    /// The largest `memory_ballast` accepted, in MiB.
    var ballastLimitMegabytes: Int
    var domainFaults: Set<FaultKind>
    /// The service's route templates, once the router is complete; `http_errors` and
    /// `latency` may name only these.
    var routes: Set<String>?

    /// Why this service cannot host `kind`, or nil when it can.
    func reasonUnsupported(_ kind: FaultKind) -> String? {
        switch kind {
        case .dbSlow, .dbPoolLimit:
            hasDatabase ? nil : "\(service) has no PostgreSQL pool"
        case .cacheFlush, .cacheBypass, .redisSlow:
            hasCache ? nil : "\(service) has no Redis cache"
        case .paymentDeclines, .processorErrors, .invoiceFailures, .notificationFailures:
            domainFaults.contains(kind) ? nil : "\(kind.rawValue) acts in \(Self.owner(of: kind)), not in \(service)"
        case .httpErrors, .latency, .memoryBallast, .cpuBurn, .eventLoopBlock, .fdLeak:
            nil
        }
    }

    static func owner(of kind: FaultKind) -> String {
        switch kind {
        case .paymentDeclines, .processorErrors: "payment-service"
        case .invoiceFailures: "billing-service"
        case .notificationFailures: "notification-service"
        default: "every service"
        }
    }
}
