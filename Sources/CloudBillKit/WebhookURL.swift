import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One `scheme://host:port` a webhook may be delivered to.
public struct WebhookOrigin: Hashable, Sendable, CustomStringConvertible {
    public let scheme: String
    public let host: String
    public let port: Int

    /// Parses `http://host:port` or `https://host[:port]` (the scheme's port when left out);
    /// nil for anything else, paths included.
    public init?(_ text: String) {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host?.lowercased(), !host.isEmpty, url.user == nil, url.password == nil,
              url.path.isEmpty || url.path == "/", url.query == nil, url.fragment == nil
        else { return nil }
        self.init(scheme: scheme, host: host, port: url.port ?? (scheme == "https" ? 443 : 80))
    }

    public init(scheme: String, host: String, port: Int) {
        self.scheme = scheme
        self.host = host
        self.port = port
    }

    /// The origin of a webhook URL; nil when it is not an http(s) URL with a host.
    public init?(of url: URL) {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host?.lowercased(), !host.isEmpty, url.user == nil, url.password == nil
        else { return nil }
        self.init(scheme: scheme, host: host, port: url.port ?? (scheme == "https" ? 443 : 80))
    }

    public var description: String { "\(scheme)://\(host):\(port)" }

    /// Whether the host is written as an IP address or is `localhost`: an operator who allows
    /// such an origin names an internal address on purpose.
    var namesAddressLiterally: Bool {
        host == "localhost" || IPAddress(host) != nil
    }
}

/// Webhook destinations: a tenant-controlled URL is accepted only when its exact
/// `scheme://host:port` is on the configured allow-list, and delivered only when, once
/// resolved, it does not lead to an internal address the allow-list did not name.
public enum WebhookURL {
    /// Checks a URL a tenant gives; 422 naming `field` when it is not allowed.
    public static func validate(_ value: String, field: String, allowedOrigins: Set<WebhookOrigin>) throws -> String {
        let text = try Validate.text(value, field: field, maxLength: 2048)
        guard let url = URL(string: text), let origin = WebhookOrigin(of: url) else {
            throw APIError(.unprocessableContent, "Field '\(field)' must be an http or https URL without credentials.")
        }
        guard allowedOrigins.contains(origin) else {
            throw APIError(
                .unprocessableContent, code: "webhook_not_allowed",
                "Field '\(field)' must point at an allowed webhook origin; \(origin) is not one."
                    + (allowedOrigins.isEmpty ? " This deployment allows none." : "")
            )
        }
        return text
    }

    /// Why a URL may not be delivered to now; nil when it may. Resolves the host (blocking:
    /// call off the event loops) and refuses loopback, private, link-local, metadata and
    /// other internal addresses unless the allowed origin names that address itself.
    public static func deliveryRefusal(_ value: String, allowedOrigins: Set<WebhookOrigin>) -> String? {
        guard let url = URL(string: value), let origin = WebhookOrigin(of: url) else { return "not an http(s) URL" }
        guard allowedOrigins.contains(origin) else { return "origin \(origin) is no longer allowed" }
        let addresses = IPAddress.resolve(origin.host, port: origin.port)
        guard !addresses.isEmpty else { return "host \(origin.host) does not resolve" }
        if !origin.namesAddressLiterally, let internalAddress = addresses.first(where: \.isInternal) {
            return "host \(origin.host) resolves to the internal address \(internalAddress)"
        }
        return nil
    }
}

/// An IPv4 or IPv6 address, for telling internal destinations from public ones.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// 4 or 16 bytes, network order.
    public let bytes: [UInt8]

    public init?(_ text: String) {
        let text = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    public var description: String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
    }

    /// Loopback, private (RFC 1918, CGNAT, ULA), link-local (the cloud metadata range
    /// 169.254/16 included), unspecified, multicast, reserved, and IPv4 mapped into IPv6.
    public var isInternal: Bool {
        if bytes.count == 4 {
            let (a, b) = (bytes[0], bytes[1])
            return a == 0 || a == 10 || a == 127 || (a == 100 && (64...127).contains(b)) || (a == 169 && b == 254)
                || (a == 172 && (16...31).contains(b)) || (a == 192 && b == 168) || (a == 192 && b == 0 && bytes[2] == 0)
                || (a == 198 && (18...19).contains(b)) || a >= 224
        }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return IPAddress(bytes: Array(bytes[12..<16])).isInternal  // ::ffff:a.b.c.d
        }
        if bytes[0..<15].allSatisfy({ $0 == 0 }) { return true }  // :: and ::1
        if bytes[0] == 0xFF { return true }  // multicast
        if bytes[0] & 0xFE == 0xFC { return true }  // fc00::/7 unique local
        if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return true }  // fe80::/10 link-local
        if bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0D && bytes[3] == 0xB8 { return true }  // documentation
        if bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xFF && bytes[3] == 0x9B { return true }  // NAT64
        return false
    }

    /// Every address `host` resolves to (blocking `getaddrinfo`).
    static func resolve(_ host: String, port: Int) -> [IPAddress] {
        if let literal = IPAddress(host) { return [literal] }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(list) }
        var addresses: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor?.pointee {
            if entry.ai_family == AF_INET, let address = entry.ai_addr {
                address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                    var value = pointer.pointee.sin_addr
                    addresses.append(IPAddress(bytes: withUnsafeBytes(of: &value) { Array($0) }))
                }
            } else if entry.ai_family == AF_INET6, let address = entry.ai_addr {
                address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    var value = pointer.pointee.sin6_addr
                    addresses.append(IPAddress(bytes: withUnsafeBytes(of: &value) { Array($0) }))
                }
            }
            cursor = entry.ai_next
        }
        return addresses
    }
}
