import Hummingbird
import Synchronization

/// Who a request is attributed to in metrics; filled in by authentication as the request
/// passes through the middleware chain, read back by ``HTTPMetricsMiddleware``.
public final class RequestAttribution: Sendable {
    private let tenantValue: Mutex<String>

    public init() { tenantValue = Mutex(TenantLabelGuard.anonymousTenant) }

    /// The authenticated tenant, or `anonymous`. Only authentication code sets it.
    public var tenant: String {
        get { tenantValue.withLock { $0 } }
        set { tenantValue.withLock { $0 = newValue } }
    }
}

/// A request context that carries a ``RequestAttribution``.
public protocol AttributedRequestContext: RequestContext {
    var attribution: RequestAttribution { get }
}

/// Records `http_requests_total`, `http_request_duration_seconds`, `http_request_size_bytes`
/// and `http_response_size_bytes` for every request but scrapes of the metrics endpoint.
///
/// Add it to the router, so that `route` is the matched route template; requests that match
/// no route share ``HTTPMetrics/unmatchedRoute``. The duration ends when the response's last
/// byte is written.
public struct HTTPMetricsMiddleware<Context: AttributedRequestContext>: RouterMiddleware {
    let metrics: HTTPMetrics
    let metricsPath: String

    public init(metrics: ServiceMetrics, metricsPath: String = "/metrics") {
        self.metrics = metrics.http
        self.metricsPath = metricsPath
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if request.uri.path == metricsPath { return try await next(request, context) }
        let start = ContinuousClock.now
        let method = HTTPMetrics.methodLabel(request.method.rawValue)
        let requestBytes = request.headers[.contentLength].flatMap { Int($0) } ?? 0
        // Read before the request goes on: the router fills it in for a matched route only,
        // and its not-found responder writes a placeholder of its own.
        let route = context.endpointPath ?? HTTPMetrics.unmatchedRoute
        let metrics = self.metrics
        do {
            var response = try await next(request, context)
            let status = Int(response.status.code)
            let attribution = context.attribution
            // A known length needs no tally (the common case: one wrapper, nothing else);
            // a streamed body is counted as it is written.
            let tally = response.body.contentLength == nil ? ByteTally() : nil
            let body = tally.map { tally in response.body.map { buffer in tally.add(buffer.readableBytes); return buffer } } ?? response.body
            let knownLength = body.contentLength
            let write: @Sendable (inout any ResponseBodyWriter) async throws -> Void = { writer in
                defer {
                    metrics.record(
                        method: method, route: route, status: status, tenant: attribution.tenant,
                        seconds: start.duration(to: .now).seconds,
                        requestBytes: requestBytes, responseBytes: knownLength ?? tally?.total ?? 0
                    )
                }
                try await body.write(writer)
            }
            response.body = knownLength.map { ResponseBody(contentLength: $0, write) } ?? ResponseBody(write)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.record(
                method: method, route: route, status: Int(status),
                tenant: context.attribution.tenant, seconds: start.duration(to: .now).seconds,
                requestBytes: requestBytes, responseBytes: 0
            )
            throw error
        }
    }
}

/// Counts the bytes of a streamed response body.
final class ByteTally: Sendable {
    private let count = Atomic<Int>(0)
    func add(_ bytes: Int) { count.add(bytes, ordering: .relaxed) }
    var total: Int { count.load(ordering: .relaxed) }
}

extension Duration {
    /// The duration in seconds as a floating-point number.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
