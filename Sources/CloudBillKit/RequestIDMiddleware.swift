import Foundation
import HTTPTypes
import Hummingbird

/// Accepts a well-formed `X-Request-ID` from the caller or makes one, puts it in the
/// context and on the response, so one id follows a request across the services.
public struct RequestIDMiddleware: RouterMiddleware {
    public typealias Context = CloudBillRequestContext
    public static let header = HTTPField.Name("X-Request-ID")!

    public init() {}

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var context = context
        let requestID = request.headers[Self.header].flatMap { Self.isWellFormed($0) ? $0 : nil } ?? Self.makeID()
        // Not put into the logger's metadata: the stream handler re-renders all of its
        // metadata on every change, a cost each request would pay for the few that log.
        // The places that log for a request name `request_id` themselves.
        context.requestID = requestID
        var response = try await next(request, context)
        response.headers[Self.header] = requestID
        return response
    }

    /// A random (version 4) UUID in lowercase, written without Foundation's formatter.
    static func makeID() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (generator.next() as UInt64, generator.next() as UInt64)
        return withUnsafeMutableBytes(of: &bytes) { raw in
            raw[6] = (raw[6] & 0x0F) | 0x40  // version 4
            raw[8] = (raw[8] & 0x3F) | 0x80  // RFC 4122 variant
            let digits: StaticString = "0123456789abcdef"
            return String(unsafeUninitializedCapacity: 36) { out in
                var position = 0
                for index in 0..<16 {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        out[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    out[position] = digits.utf8Start[Int(raw[index] >> 4)]
                    out[position + 1] = digits.utf8Start[Int(raw[index] & 0x0F)]
                    position += 2
                }
                return position
            }
        }
    }

    /// 1 to 128 characters of letters, digits and `-_.:`; anything else is replaced.
    static func isWellFormed(_ id: String) -> Bool {
        guard (1...128).contains(id.utf8.count) else { return false }
        return id.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                 UInt8(ascii: "."), UInt8(ascii: ":"):
                true
            default:
                false
            }
        }
    }
}
