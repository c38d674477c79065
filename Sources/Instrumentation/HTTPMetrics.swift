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
    }

    let requests: MetricFamily<Counter>
    let duration: MetricFamily<ValueHistogram>
    let requestSize: MetricFamily<ValueHistogram>
    let responseSize: MetricFamily<ValueHistogram>
    private let series: Mutex<[SeriesKey: Series]>

    init(service: String, registry: PrometheusCollectorRegistry, tenantLimit: Int) {
        requests = MetricFamily(MetricCatalog.httpRequestsTotal, service: service, registry: registry, tenantLimit: tenantLimit)
        duration = MetricFamily(MetricCatalog.httpRequestDuration, service: service, registry: registry, tenantLimit: tenantLimit)
        requestSize = MetricFamily(MetricCatalog.httpRequestSize, service: service, registry: registry, tenantLimit: tenantLimit)
        responseSize = MetricFamily(MetricCatalog.httpResponseSize, service: service, registry: registry, tenantLimit: tenantLimit)
        series = Mutex([:])
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
    }

    /// Creates the four series of a request that is known to come (the probes and the
    /// scrape itself) at 0, so that the HTTP families are there from the first scrape.
    public func prepare(method: String, route: String, status: Int, tenant: String) {
        _ = series(for: SeriesKey(method: method, route: route, status: status, tenant: tenant))
    }

    private func series(for key: SeriesKey) -> Series {
        if let cached = series.withLock({ $0[key] }) { return cached }
        // Each tenant-attributed family admits the tenant through its own guard.
        let requestsTenant = requests.tenantLabel(for: key.tenant)
        let durationTenant = duration.tenantLabel(for: key.tenant)
        let status = String(key.status)
        let made = Series(
            requests: requests.handle([key.method, key.route, status, requestsTenant]),
            duration: duration.handle([key.method, key.route, durationTenant]),
            requestSize: requestSize.handle([key.method, key.route]),
            responseSize: responseSize.handle([key.method, key.route])
        )
        // A folded tenant is not cached under its own name, so that every one of its
        // observations counts as folded and the cache stays bounded.
        guard requestsTenant == key.tenant, durationTenant == key.tenant else { return made }
        series.withLock { $0[key] = made }
        return made
    }
}
