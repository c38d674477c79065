import Prometheus

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
    }

    /// Records one query's execution time; `operation` is a bounded name such as `select` or a statement name.
    public func recordQuery(operation: String, tenant: String, seconds: Double) {
        queryDuration.handle([operation, tenant]).record(seconds)
    }

    public func countError(_ type: ErrorType, tenant: String) {
        errors.handle([type.rawValue, tenant]).increment()
    }
}

/// The four pool gauges, set together by the pool whenever its state changes.
public struct PoolGauges: Sendable {
    public let total: Gauge
    public let active: Gauge
    public let idle: Gauge
    public let waiting: Gauge

    init(service: String, registry: PrometheusCollectorRegistry) {
        func gauge(_ definition: MetricDefinition) -> Gauge {
            registry.makeGauge(name: definition.name, labels: [("service", service)], help: definition.help)
        }
        total = gauge(MetricCatalog.dbPoolTotalConnections)
        active = gauge(MetricCatalog.dbPoolActiveConnections)
        idle = gauge(MetricCatalog.dbPoolIdleConnections)
        waiting = gauge(MetricCatalog.dbPoolWaitingRequests)
    }

    /// Publishes a pool state; `active + idle == total` by construction.
    public func set(active: Int, idle: Int, waiting: Int) {
        self.total.set(to: Double(active + idle))
        self.active.set(to: Double(active))
        self.idle.set(to: Double(idle))
        self.waiting.set(to: Double(waiting))
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

    public func paymentAttempted(tenant: String) { payments.handle([tenant]).increment() }
    public func paymentSucceeded(tenant: String) { paymentsSucceeded.handle([tenant]).increment() }
    /// `reason` must come from a fixed set (for example `card_declined`, `processor_error`).
    public func paymentFailed(tenant: String, reason: String) { paymentsFailed.handle([tenant, reason]).increment() }
    public func invoiceGenerated(tenant: String) { invoicesGenerated.handle([tenant]).increment() }
    /// `reason` must come from a fixed set.
    public func invoiceFailed(tenant: String, reason: String) { invoicesFailed.handle([tenant, reason]).increment() }
    public func notificationSent(_ type: NotificationType, tenant: String) {
        notificationsSent.handle([type.rawValue, tenant]).increment()
    }
    public func notificationFailed(_ type: NotificationType, tenant: String) {
        notificationsFailed.handle([type.rawValue, tenant]).increment()
    }
}
