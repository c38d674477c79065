import CloudBillKit
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A service behind the gateway, and how long the gateway waits for it.
struct Upstream: Sendable {
    let name: String
    let baseURL: String
    let timeout: Duration
}

/// The public API: each route forwards to the service that owns it, with the tenant the
/// bearer token proved and the request's id.
struct ProxyController {
    let client: ServiceClient
    let verifier: TokenVerifier
    let limiter: RateLimiter
    let failures: FailedAuthenticationLimiter
    let auth: Upstream
    let billing: Upstream
    let payment: Upstream
    let notification: Upstream

    static let forwardedRequestHeaders: [HTTPField.Name] = [.contentType, .accept, HTTPField.Name("Idempotency-Key")!]
    static let forwardedResponseHeaders: [HTTPField.Name] = [.contentType, .retryAfter, .wwwAuthenticate, HTTPField.Name("Idempotent-Replayed")!]

    func addRoutes(to router: Router<CloudBillRequestContext>) {
        // These two answer with the tenant they concern, to which their metrics are attributed.
        // The admin token travels to Auth on the admin routes only.
        router.post("/admin/tenants") { request, context in
            try await forward(request, context, to: auth, forwardingAdminToken: true, attributingTenantFromAnswer: true)
        }
        router.post("/admin/tenants/{tenant_id}/api-keys") { request, context in
            try await forward(request, context, to: auth, forwardingAdminToken: true, attributingTenantFromAnswer: true)
        }
        router.post("/api/v1/auth/token") { request, context in
            try failures.check(context.clientAddress)
            let response = try await forward(request, context, to: auth, path: "/internal/tokens", attributingTenantFromAnswer: true)
            if response.status == .unauthorized { failures.recordFailure(context.clientAddress) }
            return response
        }
        let api = router.group("/api/v1").add(middleware: BearerAuthMiddleware(verifier: verifier, limiter: limiter, failures: failures))
        api.post("/auth/revoke") { request, context in
            if let token = BearerAuthMiddleware.bearerToken(request) {
                verifier.forget(token)
                let response = try await client.sendJSON(
                    .post, auth.baseURL, "/internal/tokens/revoke", service: auth.name, tenant: context.tenant,
                    requestID: context.requestID, json: ["token": token], timeout: auth.timeout
                )
                // Again now that Auth has revoked it: a request verified in between is forgotten too.
                verifier.forget(token)
                return Response(status: response.status)
            }
            return Response(status: .noContent)
        }
        for (path, upstream) in [("/customers", billing), ("/invoices", billing), ("/payments", payment), ("/notifications", notification)] {
            api.post(RouterPath(path)) { request, context in try await forward(request, context, to: upstream) }
            api.get(RouterPath(path + "/{id}")) { request, context in try await forward(request, context, to: upstream) }
        }
        api.get("/invoices") { request, context in try await forward(request, context, to: billing) }
    }

    /// Sends the request on to `upstream` (at `path`, or the same path) and relays its answer.
    func forward(
        _ request: Request,
        _ context: CloudBillRequestContext,
        to upstream: Upstream,
        path: String? = nil,
        forwardingAdminToken: Bool = false,
        attributingTenantFromAnswer: Bool = false
    ) async throws -> Response {
        var request = request
        var body: ByteBuffer?
        if request.method == .post || request.method == .put || request.method == .patch {
            do {
                body = try await request.collectBody(upTo: context.maxUploadSize)
            } catch let error as HTTPError where error.status == .contentTooLarge {
                throw APIError(.contentTooLarge, "The request body is larger than \(context.maxUploadSize / 1024) KiB.")
            }
        }
        var headers = HTTPFields()
        for name in Self.forwardedRequestHeaders {
            if let value = request.headers[name] { headers[name] = value }
        }
        if forwardingAdminToken, let value = request.headers[AdminAuthorization.header] {
            headers[AdminAuthorization.header] = value
        }
        var target = path ?? request.uri.path
        if let query = request.uri.query, !query.isEmpty { target += "?" + query }
        let tenant = context.tenant == "anonymous" ? nil : context.tenant
        let answer = try await client.send(
            request.method, upstream.baseURL, target, service: upstream.name, tenant: tenant,
            requestID: context.requestID, headers: headers, body: body, timeout: upstream.timeout
        )
        if attributingTenantFromAnswer, answer.status.kind == .successful,
           let tenant = try? answer.decode(TenantAnswer.self).tenantID, InternalIdentity.isValidTenantID(tenant) {
            context.attribution.tenant = tenant
        }
        var responseHeaders = HTTPFields()
        for name in Self.forwardedResponseHeaders {
            if let value = answer.headers[name] { responseHeaders[name] = value }
        }
        return Response(status: answer.status, headers: responseHeaders, body: .init(byteBuffer: answer.body))
    }
}

/// The `tenant_id` of an answer from Auth.
private struct TenantAnswer: Decodable {
    let tenantID: String
    enum CodingKeys: String, CodingKey { case tenantID = "tenant_id" }
}
