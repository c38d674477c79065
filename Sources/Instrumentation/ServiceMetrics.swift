import Prometheus
import Synchronization

/// All metrics of one CloudBill service, registered in one Prometheus registry.
///
/// Every series carries the service's `service` label. Tenant-attributed families keep at
/// most `tenantLimit` distinct tenants each (see ``TenantLabelGuard``).
public final class ServiceMetrics: Sendable {
    /// The `text/plain` exposition format's content type.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    public static let defaultTenantLimit = 1000

    public let service: String
    public let registry: PrometheusCollectorRegistry
    public let http: HTTPMetrics
    public let database: DatabaseMetrics
    public let cache: CacheMetrics
    public let business: BusinessMetrics
    public let runtime: RuntimeMetrics
    private let faults: MetricFamily<Gauge>
    /// One scrape renders at a time, so the gauges it refreshes are the ones it emits.
    private let scrape = Mutex(())

    /// - Parameter databasePool: whether this service owns a PostgreSQL pool; the pool
    ///   gauges are exposed only where there is a pool to describe.
    public init(service: String, tenantLimit: Int = ServiceMetrics.defaultTenantLimit, databasePool: Bool = true) {
        let registry = PrometheusCollectorRegistry()
        self.service = service
        self.registry = registry
        self.http = HTTPMetrics(service: service, registry: registry, tenantLimit: tenantLimit)
        self.database = DatabaseMetrics(service: service, registry: registry, tenantLimit: tenantLimit, pool: databasePool)
        self.cache = CacheMetrics(service: service, registry: registry, tenantLimit: tenantLimit)
        self.business = BusinessMetrics(service: service, registry: registry, tenantLimit: tenantLimit)
        self.runtime = RuntimeMetrics(service: service, registry: registry)
        self.faults = MetricFamily(MetricCatalog.faultActive, service: service, registry: registry, tenantLimit: tenantLimit)
    }

    /// Sets `cloudbill_fault_active{fault}` to 1 or 0.
    public func setFault(_ fault: String, active: Bool) {
        faults.handle([fault]).set(to: active ? 1 : 0)
    }

    /// Refreshes the process and pool families and renders every family in the text
    /// exposition format.
    public func exposition() -> [UInt8] {
        scrape.withLock { _ in
            runtime.collect()
            database.pool?.collect()
            return registry.emitToBuffer()
        }
    }
}
