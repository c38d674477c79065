import Prometheus
import Synchronization

/// Records the four HTTP families for each handled request.
public final class HTTPMetrics: Sendable {
    /// The `route` value of requests that matched no route.
    public static let unmatchedRoute = "__unmatched__"

    /// Methods recorded under their own name; any other method is recorded as `OTHER`, so
    /// that a client inventing methods cannot create series.
    public static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    /// The `method` label value for a request method.
    public static func methodLabel(_ method: String) -> String {
        knownMethods.contains(method) ? method : "OTHER"
    }

    struct SeriesKey: Hashable {
        let method: String
        let route: String
        let status: Int
        let tenant: String
    }

    struct Series: Sendable {
        let requests: Counter
        let duration: ValueHistogram
        let requestSize: ValueHistogram
        let responseSize: ValueHistogram
        /// The `cloudbill_tenants_folded_total` counters of the families whose guard folded
        /// this key's tenant into `__other__`: each observation under the key counts there.
        let folds: [Counter]
    }

    /// One part of the handle cache: keys are spread over the shards by hash, so that two
    /// event loops recording at once rarely wait for the same lock.
    final class Shard: Sendable {
        let entries = Mutex<[SeriesKey: Series]>([:])
    }

    static let shardCount = 16
    /// Keys with a folded tenant cached at most, over all shards; past it, such a key takes
    /// the guards on every request (as it did before it was cached), so the cache stays
    /// bounded however many tenants arrive.
    public static let foldedKeyLimit = 10_000

    let requests: MetricFamily<Counter>
    let duration: MetricFamily<ValueHistogram>
    let requestSize: MetricFamily<ValueHistogram>
    let responseSize: MetricFamily<ValueHistogram>
    private let shards: [Shard]
    private let foldedKeys = Atomic<Int>(0)

    init(service: String, registry: PrometheusCollectorRegistry, tenantLimit: Int) {
        requests = MetricFamily(MetricCatalog.httpRequestsTotal, service: service, registry: registry, tenantLimit: tenantLimit)
        duration = MetricFamily(MetricCatalog.httpRequestDuration, service: service, registry: registry, tenantLimit: tenantLimit)
        requestSize = MetricFamily(MetricCatalog.httpRequestSize, service: service, registry: registry, tenantLimit: tenantLimit)
        responseSize = MetricFamily(MetricCatalog.httpResponseSize, service: service, registry: registry, tenantLimit: tenantLimit)
        shards = (0..<Self.shardCount).map { _ in Shard() }
    }

    /// Records one finished request.
    ///
    /// - Parameters:
    ///   - route: the matched route template, or ``unmatchedRoute``; never a raw path.
    ///   - tenant: the authenticated tenant, or `anonymous`.
    public func record(
        method: String,
        route: String,
        status: Int,
        tenant: String,
        seconds: Double,
        requestBytes: Int,
        responseBytes: Int
    ) {
        let handles = self.series(for: SeriesKey(method: method, route: route, status: status, tenant: tenant))
        handles.requests.increment()
        handles.duration.record(seconds)
        handles.requestSize.record(Double(requestBytes))
        handles.responseSize.record(Double(responseBytes))
        for fold in handles.folds { fold.increment() }
    }

    /// Creates the four series of a request that is known to come (the probes and the
    /// scrape itself) at 0, so that the HTTP families are there from the first scrape.
    public func prepare(method: String, route: String, status: Int, tenant: String) {
        _ = series(for: SeriesKey(method: method, route: route, status: status, tenant: tenant))
    }

    private func series(for key: SeriesKey) -> Series {
        let shard = shards[Int(UInt(bitPattern: key.hashValue) % UInt(Self.shardCount))]
        if let cached = shard.entries.withLock({ $0[key] }) { return cached }
        // Each tenant-attributed family admits the tenant through its own guard. A guard's
        // verdict never changes (a tenant admitted stays admitted; once the guard is full it
        // stays full), so it can be cached with the handles.
        let requestsTenant = requests.admit(key.tenant)
        let durationTenant = duration.admit(key.tenant)
        let status = String(key.status)
        var folds: [Counter] = []
        if let fold = requestsTenant.fold { folds.append(fold) }
        if let fold = durationTenant.fold { folds.append(fold) }
        let made = Series(
            requests: requests.handle([key.method, key.route, status, requestsTenant.label]),
            duration: duration.handle([key.method, key.route, durationTenant.label]),
            requestSize: requestSize.handle([key.method, key.route]),
            responseSize: responseSize.handle([key.method, key.route]),
            folds: folds
        )
        if folds.isEmpty {
            shard.entries.withLock { $0[key] = made }
        } else if foldedKeys.wrappingAdd(1, ordering: .relaxed).newValue <= Self.foldedKeyLimit {
            let inserted = shard.entries.withLock { $0.updateValue(made, forKey: key) == nil }
            if !inserted { foldedKeys.subtract(1, ordering: .relaxed) }
        } else {
            foldedKeys.subtract(1, ordering: .relaxed)
        }
        return made
    }
}
