import Crypto
import Hummingbird
import Foundation

/// Random secrets and their digests.
public enum Secrets {
    /// `count` random bytes from the system's CSPRNG, as lowercase hex.
    public static func randomHex(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// SHA-256 of `parts` concatenated, as lowercase hex.
    public static func sha256Hex(_ parts: String...) -> String {
        var hasher = SHA256()
        for part in parts { hasher.update(data: Data(part.utf8)) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Compares in time independent of where the strings differ.
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        InternalIdentity.secretsMatch(a, b)
    }
}

extension CloudBillRequestContext {
    /// Throws 401 unless the request carries the internal secret: for endpoints only the
    /// gateway and the services call.
    public func requireInternalCaller(_ request: Request, token: String) throws {
        guard let presented = request.headers[InternalIdentity.tokenHeader], InternalIdentity.secretsMatch(presented, token) else {
            throw APIError(.unauthorized, "This endpoint is internal to CloudBill.")
        }
    }
}
