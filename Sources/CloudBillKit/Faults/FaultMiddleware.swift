import HTTPTypes
import Hummingbird

/// Acts out `latency` and `http_errors` on requests before they are handled: the delay is
/// a real wait, the error a real 5xx response, counted by the metrics middleware like any other.
///
/// The admin fault API, `/metrics`, `/health` and `/ready` are never affected, so a fault
/// can always be cleared and the service always watched.
public struct FaultMiddleware: RouterMiddleware {
    public typealias Context = CloudBillRequestContext
    let injector: FaultInjector

    public init(injector: FaultInjector) {
        self.injector = injector
    }

    /// Paths no injected fault touches.
    static let exemptPaths: Set<String> = ["/metrics", "/health", "/ready", FaultAdminController.path]

    static func isExempt(_ path: String) -> Bool {
        exemptPaths.contains(path) || path.hasPrefix(FaultAdminController.path + "/")
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard !Self.isExempt(request.uri.path) else { return try await next(request, context) }
        let (delay, status) = injector.requestFaults(route: context.endpointPath, tenant: context.tenant)
        if let delay { try await Task.sleep(for: delay) }
        if let status {
            throw APIError(HTTPResponse.Status(code: status), "Injected fault http_errors answered this request with \(status).")
        }
        return try await next(request, context)
    }
}
