import HTTPTypes
import Hummingbird

/// The identity the gateway hands to a service: trusted only when it comes with the
/// internal secret.
public enum InternalIdentity {
    /// The tenant the gateway authenticated.
    public static let tenantHeader = HTTPField.Name("X-CloudBill-Tenant")!
    /// The secret proving the request came through the gateway.
    public static let tokenHeader = HTTPField.Name("X-CloudBill-Internal-Token")!

    /// Whether `value` is a well-formed tenant id: 1 to 64 of `a-z`, `0-9`, `-`, `_`,
    /// starting with a letter or digit. The reserved metric values never are.
    public static func isValidTenantID(_ value: some StringProtocol) -> Bool {
        guard (1...64).contains(value.utf8.count), let first = value.utf8.first else { return false }
        func isAlphanumeric(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
        guard isAlphanumeric(first) else { return false }
        return value.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
            && value != "anonymous"
    }

    /// Compares secrets in time independent of where they differ.
    static func secretsMatch(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in x.indices { difference |= x[i] ^ y[i] }
        return difference == 0
    }
}

/// Attributes a request to the tenant the gateway vouched for. Without the internal secret,
/// or with a malformed tenant, the request stays `anonymous`: a tenant header a client sends
/// straight to a service is never believed.
public struct InternalIdentityMiddleware: RouterMiddleware {
    public typealias Context = CloudBillRequestContext
    let internalToken: String

    public init(internalToken: String) {
        self.internalToken = internalToken
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if let token = request.headers[InternalIdentity.tokenHeader],
           InternalIdentity.secretsMatch(token, internalToken),
           let tenant = request.headers[InternalIdentity.tenantHeader],
           InternalIdentity.isValidTenantID(tenant) {
            context.attribution.tenant = tenant
        }
        return try await next(request, context)
    }
}
