import Foundation

/// Everything loadgen knows about the fault admin API (issue 7), in one place: which
/// service listens where, which fault kinds exist with which parameters, and the JSON
/// plan sent with `PUT /admin/faults`. Align `plan(kind:parameters:)` with
/// docs/faults.md when its format changes.
enum FaultCatalog {
    static let servicePorts: [String: Int] = [
        "gateway": 8080, "auth": 3001, "billing": 3002, "payment": 3003, "notification": 3004,
    ]

    /// Names `scripts/stack stop|start` accepts.
    static let stackComponents: Set<String> = [
        "postgres", "redis", "gateway", "auth", "billing", "payment", "notification", "prometheus", "alertmanager",
    ]

    /// Fault kinds and the parameters each takes (every kind also takes `duration_s`).
    static let kinds: [String: [String]] = [
        "http_errors": ["rate", "status"],
        "latency": ["latency_ms", "rate"],
        "db_slow": ["latency_ms"],
        "db_pool_limit": ["size"],
        "cache_flush": [],
        "cache_bypass": [],
        "payment_declines": ["rate"],
        "processor_errors": ["rate"],
        "invoice_failures": ["rate"],
        "notification_failures": ["rate"],
        "memory_ballast": ["megabytes"],
        "cpu_burn": ["cores"],
    ]

    static let path = "/admin/faults"
    static let adminHeader = "X-Admin-Token"

    /// The service's base URL, on the gateway's host.
    static func baseURL(of service: String, gatewayURL: String) -> String {
        let port = servicePorts[service] ?? 8080
        guard var components = URLComponents(string: gatewayURL) else { return "http://127.0.0.1:\(port)" }
        components.port = port
        components.path = ""
        return components.string ?? "http://127.0.0.1:\(port)"
    }

    /// The body of `PUT /admin/faults`: `{"faults":[{"kind":K, PARAMETERS...}]}`.
    static func plan(kind: String, parameters: [String: Double]) -> Data {
        var fault: [String: Any] = ["kind": kind]
        for (key, value) in parameters {
            fault[key] = value == value.rounded() && abs(value) < 1e15 ? Int64(value) as Any : value as Any
        }
        let document: [String: Any] = ["faults": [fault]]
        return (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])) ?? Data()
    }
}
