import Hummingbird
import Foundation

/// Random secrets and their digests.
public enum Secrets {
    /// `count` random bytes from the system's CSPRNG, as lowercase hex.
    public static func randomHex(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return hex((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// SHA-256 of `parts` concatenated, as lowercase hex.
    public static func sha256Hex(_ parts: String...) -> String {
        SHA256Digest.hash(parts.flatMap(\.utf8)).description
    }

    /// Lowercase hex of `bytes`.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Compares in time independent of where the strings differ.
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        InternalIdentity.secretsMatch(a, b)
    }
}

extension CloudBillRequestContext {
    /// Throws 401 unless the request carries the internal secret: for endpoints only the
    /// gateway and the services call.
    public func requireInternalCaller(_ request: Request, accepting tokens: [String]) throws {
        guard let presented = request.headers[InternalIdentity.tokenHeader], InternalIdentity.matchesAny(presented, tokens) else {
            throw APIError(.unauthorized, "This endpoint is internal to CloudBill.")
        }
    }
}
