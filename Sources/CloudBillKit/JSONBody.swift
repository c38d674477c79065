import Foundation
import HTTPTypes
import Hummingbird

extension Request {
    /// Decodes the JSON body as `T`, turning each way it can be wrong into an ``APIError`` a
    /// client can act on: 415 for another content type, 413 past the size limit, 400 for
    /// malformed JSON or a missing or mistyped field (named in the message).
    public func decodeJSON<T: Decodable>(as type: T.Type = T.self, context: CloudBillRequestContext) async throws -> T {
        let contentType = headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard contentType == "application/json" else {
            throw APIError(.unsupportedMediaType, "Send the body as JSON with Content-Type: application/json.")
        }
        var request = self
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: context.maxUploadSize)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "The request body is larger than \(context.maxUploadSize / 1024) KiB.")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: buffer))
        } catch let error as DecodingError {
            throw APIError(.badRequest, code: "invalid_json", Self.describe(error))
        } catch let error as APIError {
            throw error
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context, _ key: (any CodingKey)? = nil) -> String {
            let keys = context.codingPath + (key.map { [$0] } ?? [])
            let rendered = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return rendered.hasPrefix(".") ? String(rendered.dropFirst()) : rendered
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "Field '\(path(context, key))' is required."
        case .typeMismatch(let type, let context):
            return "Field '\(path(context))' must be \(Self.describe(type))."
        case .valueNotFound(let type, let context):
            return "Field '\(path(context))' must be \(Self.describe(type)), not null."
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "The body is not valid JSON." }
            return "Field '\(path(context))' is invalid: \(context.debugDescription)"
        @unknown default:
            return "The body could not be read as JSON."
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type, is Int32.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default: String(describing: type).contains("Array") ? "an array" : "an object"
        }
    }
}

/// Input checks that answer 422 with a message naming the field.
public enum Validate {
    /// Text of at most `maxLength` characters (Unicode code points, as JSON Schema's
    /// `maxLength` counts them) without control characters (line breaks and tabs only with
    /// `allowingLineBreaks`) and with at least one that is not whitespace; returned trimmed.
    /// docs/openapi.yaml states the same rule as `maxLength` and a `pattern`.
    public static func text(_ value: String, field: String, maxLength: Int, allowingLineBreaks: Bool = false) throws -> String {
        guard value.unicodeScalars.count <= maxLength else {
            throw APIError(.unprocessableContent, "Field '\(field)' must be at most \(maxLength) characters.")
        }
        let allowed: Set<UInt32> = allowingLineBreaks ? [0x09, 0x0A, 0x0D] : []
        guard !value.unicodeScalars.contains(where: { isControl($0) && !allowed.contains($0.value) }) else {
            throw APIError(
                .unprocessableContent,
                "Field '\(field)' must not contain control characters\(allowingLineBreaks ? " other than line breaks and tabs" : "")."
            )
        }
        let trimmed = value.trimmingCharacters(in: Self.whitespace)
        guard !trimmed.isEmpty else { throw APIError(.unprocessableContent, "Field '\(field)' must not be empty or only whitespace.") }
        return trimmed
    }

    /// A UUID path parameter or field; anything else is 404 for a path and 422 for a field.
    public static func uuid(_ value: String, field: String, inPath: Bool = false) throws -> UUID {
        guard let uuid = UUID(uuidString: value) else {
            if inPath { throw APIError(.notFound, "No \(field) with id '\(value.prefix(64))'.") }
            throw APIError(.unprocessableContent, "Field '\(field)' must be a UUID.")
        }
        return uuid
    }

    /// An e-mail address of the plain `local@domain.tld` shape, at most 254 characters, as
    /// sent: no whitespace, control characters, `<`, `>` or `"` anywhere; returned lowercased.
    public static func email(_ value: String, field: String) throws -> String {
        // On code points, not characters: a dot followed by a combining mark or an emoji
        // modifier is one Character, and would hide the dot.
        let parts = value.unicodeScalars.split(separator: "@", omittingEmptySubsequences: false)
        guard value.unicodeScalars.count <= 254, parts.count == 2, !parts[0].isEmpty,
              parts[1].contains("."), parts[1].first != ".", parts[1].last != ".",
              !value.unicodeScalars.contains(where: { isControl($0) || whitespace.contains($0) || "<>\"".unicodeScalars.contains($0) })
        else { throw APIError(.unprocessableContent, "Field '\(field)' must be an e-mail address.") }
        return value.lowercased()
    }

    /// What trimming removes: Unicode whitespace and U+FEFF, which the `\s` of the patterns
    /// in docs/openapi.yaml (ECMAScript regular expressions) also counts as whitespace.
    static let whitespace = CharacterSet.whitespacesAndNewlines.union(CharacterSet(charactersIn: "\u{FEFF}"))

    /// A control character: general category Cc (U+0000–U+001F, U+007F–U+009F).
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.generalCategory == .control
    }
}

extension JSONDecoder {
    /// A decoder reading ISO 8601 dates, the format CloudBill writes.
    public static var iso8601: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

extension JSONEncoder {
    /// An encoder writing ISO 8601 dates.
    public static var iso8601: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}

// CloudBill writes UUIDs in lowercase, as PostgreSQL does. These overloads are more specific
// than the generic ones, so the synthesised `Encodable` conformances pick them.
extension KeyedEncodingContainer {
    public mutating func encode(_ value: UUID, forKey key: Key) throws {
        try encode(value.uuidString.lowercased(), forKey: key)
    }

    public mutating func encodeIfPresent(_ value: UUID?, forKey key: Key) throws {
        try encodeIfPresent(value?.uuidString.lowercased(), forKey: key)
    }
}
