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

    /// Compares secrets in time independent of where they differ and of their lengths: both
    /// are hashed to 32 bytes first, and all 32 are always compared.
    static func secretsMatch(_ a: String, _ b: String) -> Bool {
        let x = SHA256Digest.hash(a).bytes, y = SHA256Digest.hash(b).bytes
        var difference: UInt8 = 0
        for i in 0..<32 { difference |= x[i] ^ y[i] }
        return difference == 0
    }

    /// Whether `presented` matches one of `secrets`; every one is compared, whichever matches.
    static func matchesAny(_ presented: String, _ secrets: [String]) -> Bool {
        secrets.reduce(false) { matched, secret in secretsMatch(presented, secret) || matched }
    }
}

/// Attributes a request to the tenant the gateway vouched for. Without the internal secret,
/// or with a malformed tenant, the request stays `anonymous`: a tenant header a client sends
/// straight to a service is never believed.
public struct InternalIdentityMiddleware: RouterMiddleware {
    public typealias Context = CloudBillRequestContext
    let acceptedTokens: [String]

    /// - Parameter acceptedTokens: the current internal secret and, during a rotation, the previous one.
    public init(acceptedTokens: [String]) {
        self.acceptedTokens = acceptedTokens
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if let token = request.headers[InternalIdentity.tokenHeader],
           InternalIdentity.matchesAny(token, acceptedTokens),
           let tenant = request.headers[InternalIdentity.tenantHeader],
           InternalIdentity.isValidTenantID(tenant) {
            context.attribution.tenant = tenant
        }
        return try await next(request, context)
    }
}
