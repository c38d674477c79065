import Prometheus
import Synchronization

/// PostgreSQL pool and query metrics of one service.
public final class DatabaseMetrics: Sendable {
    /// How a database failure is classified in `db_errors_total`.
    public enum ErrorType: String, Sendable, CaseIterable {
        case connection
        case timeout
        case poolExhausted = "pool_exhausted"
        case constraint
        case query
    }

    /// The pool gauges; nil in a service without a PostgreSQL pool.
    public let pool: PoolGauges?
    let queryDuration: MetricFamily<ValueHistogram>
    let errors: MetricFamily<Counter>

    init(service: String, registry: PrometheusCollectorRegistry, tenantLimit: Int, pool: Bool) {
        self.pool = pool ? PoolGauges(service: service, registry: registry) : nil
        queryDuration = MetricFamily(MetricCatalog.dbQueryDuration, service: service, registry: registry, tenantLimit: tenantLimit)
        errors = MetricFamily(MetricCatalog.dbErrorsTotal, service: service, registry: registry, tenantLimit: tenantLimit)
        // Statements without a tenant (migrations, readiness) count as `anonymous`: those
        // series exist at 0 from the first scrape. A tenant's appear with its first query.
        for type in ErrorType.allCases { _ = errors.handle([type.rawValue, "anonymous"]) }
    }

    /// Records one query's execution time; `operation` is a bounded name such as `select` or a statement name.
    public func recordQuery(operation: String, tenant: String, seconds: Double) {
        queryDuration.handle([operation, tenant]).record(seconds)
    }

    public func countError(_ type: ErrorType, tenant: String) {
        errors.handle([type.rawValue, tenant]).increment()
    }
}

/// The four pool gauges of one service, always exposed as one consistent pool state.
///
/// The pool publishes its state whenever it changes; the gauges take that state only when
/// a scrape renders them (``ServiceMetrics/exposition()``, one scrape at a time). Setting
/// four gauges one by one as the pool changes would let a scrape read `active` from one
/// state and `idle` from the next, and show more connections than the pool can hold.
public final class PoolGauges: Sendable {
    struct State {
        var capacity: Int
        var active: Int
        var idle: Int
        var waiting: Int
    }

    private let total: Gauge
    private let active: Gauge
    private let idle: Gauge
    private let waiting: Gauge
    private let state = Mutex(State(capacity: 0, active: 0, idle: 0, waiting: 0))

    init(service: String, registry: PrometheusCollectorRegistry) {
        func gauge(_ definition: MetricDefinition) -> Gauge {
            registry.makeGauge(name: definition.name, labels: [("service", service)], help: definition.help)
        }
        total = gauge(MetricCatalog.dbPoolTotalConnections)
        active = gauge(MetricCatalog.dbPoolActiveConnections)
        idle = gauge(MetricCatalog.dbPoolIdleConnections)
        waiting = gauge(MetricCatalog.dbPoolWaitingRequests)
    }

    /// Publishes a pool state. `capacity` is the pool's size, the most connections it may
    /// hold now (the configured maximum, or the lower cap of an injected `db_pool_limit`), so
    /// that `active / total` is the share of the pool's capacity in use; `active + idle` are
    /// the connections open now, at most `capacity`.
    public func set(capacity: Int, active: Int, idle: Int, waiting: Int) {
        state.withLock { $0 = State(capacity: capacity, active: active, idle: idle, waiting: waiting) }
    }

    /// Copies the last published state into the gauges; called by the scrape, never concurrently.
    func collect() {
        let current = state.withLock { $0 }
        total.set(to: Double(current.capacity))
        active.set(to: Double(current.active))
        idle.set(to: Double(current.idle))
        waiting.set(to: Double(current.waiting))
    }
}

/// Redis cache metrics of one service.
public final class CacheMetrics: Sendable {
    public enum Operation: String, Sendable, CaseIterable {
        case hit
        case miss
        case set
        case delete
    }

    public enum ErrorType: String, Sendable, CaseIterable {
        case connection
        case timeout
        case `protocol`
        case command
    }

    let operations: MetricFamily<Counter>
    let duration: MetricFamily<ValueHistogram>
    let errors: MetricFamily<Counter>

    init(service: String, registry: PrometheusCollectorRegistry, tenantLimit: Int) {
        operations = MetricFamily(MetricCatalog.redisOperationsTotal, service: service, registry: registry, tenantLimit: tenantLimit)
        duration = MetricFamily(MetricCatalog.redisOperationDuration, service: service, registry: registry, tenantLimit: tenantLimit)
        errors = MetricFamily(MetricCatalog.redisErrorsTotal, service: service, registry: registry, tenantLimit: tenantLimit)
        // Every error type is known up front: each series exists at 0 from the first scrape,
        // so rates and ratios read 0 rather than nothing before the first failure.
        for type in ErrorType.allCases { _ = errors.handle([type.rawValue]) }
        // Likewise the operations without a tenant (`anonymous`: the service's own reads and
        // writes); a tenant's series appear with its first operation.
        for operation in Operation.allCases {
            _ = operations.handle([operation.rawValue, "anonymous"])
            _ = duration.handle([operation.rawValue])
        }
    }

    /// Records one cache operation that reached Redis and came back.
    public func record(_ operation: Operation, tenant: String, seconds: Double) {
        operations.handle([operation.rawValue, tenant]).increment()
        duration.handle([operation.rawValue]).record(seconds)
    }

    public func countError(_ type: ErrorType) {
        errors.handle([type.rawValue]).increment()
    }
}

/// CloudBill's business counters.
public final class BusinessMetrics: Sendable {
    public enum NotificationType: String, Sendable, CaseIterable {
        case email
        case sms
        case webhook
    }

    let payments: MetricFamily<Counter>
    let paymentsSucceeded: MetricFamily<Counter>
    let paymentsFailed: MetricFamily<Counter>
    let invoicesGenerated: MetricFamily<Counter>
    let invoicesFailed: MetricFamily<Counter>
    let notificationsSent: MetricFamily<Counter>
    let notificationsFailed: MetricFamily<Counter>

    init(service: String, registry: PrometheusCollectorRegistry, tenantLimit: Int) {
        func family(_ definition: MetricDefinition) -> MetricFamily<Counter> {
            MetricFamily(definition, service: service, registry: registry, tenantLimit: tenantLimit)
        }
        payments = family(MetricCatalog.paymentsTotal)
        paymentsSucceeded = family(MetricCatalog.paymentsSucceededTotal)
        paymentsFailed = family(MetricCatalog.paymentsFailedTotal)
        invoicesGenerated = family(MetricCatalog.invoicesGeneratedTotal)
        invoicesFailed = family(MetricCatalog.invoicesFailedTotal)
        notificationsSent = family(MetricCatalog.notificationsSentTotal)
        notificationsFailed = family(MetricCatalog.notificationsFailedTotal)
    }

    /// The `reason` values of `cloudbill_payments_failed_total`.
    public static let paymentFailureReasons = ["card_declined", "processor_error", "unknown_payment_method"]
    /// The `reason` values of `cloudbill_invoices_failed_total`.
    public static let invoiceFailureReasons = ["generation_error"] + DatabaseMetrics.ErrorType.allCases.map { "storage_" + $0.rawValue }

    // A tenant's failure series are created at 0 together with its first success series (and
    // the other way round), so that failure ratios read 0 rather than nothing and the first
    // failure is seen by rate(). No series is made for a tenant before it does something.

    public func paymentAttempted(tenant: String) {
        payments.handle([tenant]).increment()
        _ = paymentsSucceeded.handle([tenant])
        for reason in Self.paymentFailureReasons { _ = paymentsFailed.handle([tenant, reason]) }
    }
    public func paymentSucceeded(tenant: String) { paymentsSucceeded.handle([tenant]).increment() }
    /// `reason` must be one of ``paymentFailureReasons``.
    public func paymentFailed(tenant: String, reason: String) { paymentsFailed.handle([tenant, reason]).increment() }
    public func invoiceGenerated(tenant: String) {
        invoicesGenerated.handle([tenant]).increment()
        for reason in Self.invoiceFailureReasons { _ = invoicesFailed.handle([tenant, reason]) }
    }
    /// `reason` must be one of ``invoiceFailureReasons``.
    public func invoiceFailed(tenant: String, reason: String) {
        invoicesFailed.handle([tenant, reason]).increment()
        _ = invoicesGenerated.handle([tenant])
    }
    public func notificationSent(_ type: NotificationType, tenant: String) {
        notificationsSent.handle([type.rawValue, tenant]).increment()
        _ = notificationsFailed.handle([type.rawValue, tenant])
    }
    public func notificationFailed(_ type: NotificationType, tenant: String) {
        notificationsFailed.handle([type.rawValue, tenant]).increment()
        _ = notificationsSent.handle([type.rawValue, tenant])
    }
}
