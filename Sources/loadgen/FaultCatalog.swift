import Foundation

/// Everything loadgen knows about the fault admin API (issue 7), in one place: which
/// service listens where, which fault kinds exist with which parameters, and the JSON
/// body sent with `PUT /admin/faults/{kind}`, as docs/faults.md describes them.
enum FaultCatalog {
    static let servicePorts: [String: Int] = [
        "gateway": 8080, "auth": 3001, "billing": 3002, "payment": 3003, "notification": 3004,
    ]

    /// The `service` label each service puts on its metrics, and so on its alerts.
    static let serviceLabels: [String: String] = [
        "gateway": "api-gateway", "auth": "auth-service", "billing": "billing-service",
        "payment": "payment-service", "notification": "notification-service",
    ]

    /// Names `scripts/stack stop|start` accepts.
    static let stackComponents: Set<String> = [
        "postgres", "redis", "gateway", "auth", "billing", "payment", "notification", "prometheus", "alertmanager",
    ]

    /// Fault kinds and the parameters each takes (every kind also takes `duration_s`).
    /// Names and meanings are the fault API's own (docs/faults.md); `latency` is sent with
    /// the `fixed` distribution, so its `delay_ms` is the added delay.
    static let kinds: [String: [String]] = [
        "http_errors": ["rate", "status"],
        "latency": ["delay_ms", "rate"],
        "db_slow": ["sleep_ms", "rate", "timeout_ms"],
        "db_pool_limit": ["max_connections"],
        "cache_flush": ["interval_ms"],
        "cache_bypass": ["rate"],
        "redis_slow": ["sleep_ms", "rate"],
        "payment_declines": ["rate"],
        "processor_errors": ["rate"],
        "invoice_failures": ["rate"],
        "notification_failures": ["rate"],
        "memory_ballast": ["mb"],
        "cpu_burn": ["share"],
        "event_loop_block": ["block_ms"],
        "fd_leak": ["share", "per_second"],
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

    /// The path that sets one fault and leaves the service's others as they are.
    static func path(of kind: String) -> String { path + "/" + kind }

    /// The body of `PUT /admin/faults/{kind}`: the fault's parameters.
    static func plan(kind: String, parameters: [String: Double]) -> Data {
        var fault: [String: Any] = [:]
        for (key, value) in parameters {
            fault[key] = value == value.rounded() && abs(value) < 1e15 ? Int64(value) as Any : value as Any
        }
        if kind == "latency" { fault["distribution"] = "fixed" }
        return (try? JSONSerialization.data(withJSONObject: fault, options: [.sortedKeys])) ?? Data()
    }
}
