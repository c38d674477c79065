import Foundation

/// Webhook destinations: http(s) URLs whose host is on the configured allow-list, so that a
/// tenant cannot make CloudBill send requests anywhere else.
public enum WebhookURL {
    public static func validate(_ value: String, field: String, allowedHosts: Set<String>) throws -> String {
        let text = try Validate.text(value, field: field, maxLength: 2048)
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host?.lowercased(), !host.isEmpty, url.user == nil, url.password == nil
        else { throw APIError(.unprocessableContent, "Field '\(field)' must be an http or https URL.") }
        guard allowedHosts.contains(host) else {
            throw APIError(.unprocessableContent, "Field '\(field)' must point at an allowed webhook host (\(allowedHosts.sorted().joined(separator: ", "))).")
        }
        return text
    }
}
