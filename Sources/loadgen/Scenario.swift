import Foundation

/// A named run: phases of traffic, the faults they apply and the alerts they expect.
struct Scenario: Sendable, Codable, Equatable {
    var name: String
    var summary: String
    /// The rate that `Nx` rates in the phases multiply; `--rate` replaces it.
    var baseRate: Double
    var spacing: ArrivalSpacing
    var mix: TrafficMix
    var phases: [Phase]
    var expectedAlerts: [String]
    var thresholds: [Threshold]

    var totalDuration: Double { phases.reduce(0) { $0 + $1.duration } }

    /// The same scenario with every phase stretched so that the run lasts `total` seconds.
    /// The `service` labels an expected alert must carry to count: those of the services the
    /// scenario's faults act on. nil (any service) when a fault stops something every service
    /// uses (PostgreSQL, Redis) or the scenario injects nothing (traffic changes).
    var watchedServices: Set<String>? {
        var labels: Set<String> = []
        for action in phases.flatMap(\.inject) {
            switch action {
            case .service(let service, _, _):
                guard let label = FaultCatalog.serviceLabels[service] else { return nil }
                labels.insert(label)
            case .stop(let component):
                guard let label = FaultCatalog.serviceLabels[component] else { return nil }
                labels.insert(label)
            }
        }
        return labels.isEmpty ? nil : labels
    }

    func scaled(toDuration total: Double) -> Scenario {
        var copy = self
        let factor = total / max(totalDuration, 0.001)
        for index in copy.phases.indices { copy.phases[index].duration *= factor }
        return copy
    }
}

/// One stretch of a scenario.
struct Phase: Sendable, Codable, Equatable {
    var name: String
    /// Seconds; the longest the phase lasts when it waits on alerts.
    var duration: Double
    var shape: RateShape
    /// Applied when the phase starts.
    var inject: [FaultAction] = []
    /// Clears every fault applied so far when the phase starts.
    var clearsFaults = false
    /// Ends the phase early once the expected alerts reach this state.
    var until: AlertGoal?
}

/// What the alert watcher waits for.
enum AlertGoal: String, Sendable, Codable {
    case firing = "alerts_firing"
    case resolved = "alerts_resolved"
}

/// What the requests do.
enum TrafficMix: Sendable, Codable, Equatable {
    /// Tenants walking CloudBill's real flows through the gateway.
    case cloudbill
    /// One GET on one path, without tenants (stub servers, benchmarks).
    case ping(path: String)
}

/// A fault applied at a phase's start and undone when a later phase clears faults.
enum FaultAction: Sendable, Codable, Equatable, CustomStringConvertible {
    /// `PUT /admin/faults` on a service with the plan `FaultCatalog` builds.
    case service(service: String, kind: String, parameters: [String: Double])
    /// `scripts/stack stop NAME` (undone by `scripts/stack start NAME`).
    case stop(component: String)

    var description: String {
        switch self {
        case .service(let service, let kind, let parameters):
            let detail = parameters.keys.sorted().map { "\($0)=\(formatNumber(parameters[$0]!))" }.joined(separator: " ")
            return "\(kind) on \(service)" + (detail.isEmpty ? "" : " (\(detail))")
        case .stop(let component): return "stop \(component)"
        }
    }
}

func formatNumber(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
}

/// A pass/fail rule over the whole run: `p99<300ms`, `errors<1%`, `achieved>=99%`,
/// `alert fired`, `alert resolved`; `PHASE:rule` limits it to one phase.
struct Threshold: Sendable, Codable, Equatable, CustomStringConvertible {
    enum Metric: Sendable, Codable, Equatable {
        case latencyPercentile(Double)
        case maxLatency
        case errorRatio
        case achievedRatio
        case alertsFired
        case alertsResolved
    }
    enum Comparison: String, Sendable, Codable { case less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">=" }

    let text: String
    let phase: String?
    let metric: Metric
    let comparison: Comparison
    /// Milliseconds for latencies, a ratio (0...1) for percentages.
    let limit: Double

    var description: String { text }

    init(parsing text: String) throws(ConfigurationError) {
        self.text = text
        var rule = text.trimmingCharacters(in: .whitespaces)
        if let colon = rule.firstIndex(of: ":") {
            phase = String(rule[..<colon]).trimmingCharacters(in: .whitespaces)
            rule = String(rule[rule.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        } else {
            phase = nil
        }
        let lowered = rule.lowercased()
        if lowered == "alert fired" || lowered == "alerts fired" {
            metric = .alertsFired; comparison = .greaterOrEqual; limit = 1; return
        }
        if lowered == "alert resolved" || lowered == "alerts resolved" {
            metric = .alertsResolved; comparison = .greaterOrEqual; limit = 1; return
        }
        guard let operatorRange = rule.range(of: "<=") ?? rule.range(of: ">=") ?? rule.range(of: "<") ?? rule.range(of: ">") else {
            throw ConfigurationError(field: "threshold", message: "'\(text)' has no comparison (<, <=, >, >=)")
        }
        comparison = Comparison(rawValue: String(rule[operatorRange]))!
        let name = rule[..<operatorRange.lowerBound].trimmingCharacters(in: .whitespaces).lowercased()
        let value = rule[operatorRange.upperBound...].trimmingCharacters(in: .whitespaces)
        switch name {
        case "errors", "error", "error_rate":
            metric = .errorRatio
            limit = try Self.percentage(value, text)
        case "achieved":
            metric = .achievedRatio
            limit = try Self.percentage(value, text)
        case "max":
            metric = .maxLatency
            limit = try Self.milliseconds(value, text)
        case let p where p.hasPrefix("p"):
            var digits = String(p.dropFirst())
            if digits.contains("_") { digits = digits.replacingOccurrences(of: "_", with: ".") }
            guard var percentile = Double(digits), percentile > 0 else {
                throw ConfigurationError(field: "threshold", message: "'\(text)': unknown percentile '\(p)'")
            }
            if percentile > 100 { percentile = Double("99." + digits.dropFirst(2)) ?? percentile }  // p999 = p99.9
            metric = .latencyPercentile(percentile)
            limit = try Self.milliseconds(value, text)
        default:
            throw ConfigurationError(field: "threshold", message: "'\(text)': unknown metric '\(name)' (pNN, max, errors, achieved, alert fired)")
        }
    }

    private static func percentage(_ value: String, _ text: String) throws(ConfigurationError) -> Double {
        let number = value.hasSuffix("%") ? Double(value.dropLast()).map { $0 / 100 } : Double(value)
        guard let number else { throw ConfigurationError(field: "threshold", message: "'\(text)': '\(value)' is not a percentage") }
        return number
    }

    private static func milliseconds(_ value: String, _ text: String) throws(ConfigurationError) -> Double {
        guard let seconds = parseDuration(value) else {
            throw ConfigurationError(field: "threshold", message: "'\(text)': '\(value)' is not a duration such as 300ms")
        }
        return seconds * 1000
    }

    func holds(_ observed: Double) -> Bool {
        switch comparison {
        case .less: return observed < limit
        case .lessOrEqual: return observed <= limit
        case .greater: return observed > limit
        case .greaterOrEqual: return observed >= limit
        }
    }
}

/// A scenario or option that cannot be used, naming the field that is wrong.
struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    let field: String
    let message: String
    var description: String { "\(field): \(message)" }
}

/// Seconds in `30`, `30s`, `250ms`, `5m`, `1h`, `1m30s`.
func parseDuration(_ text: String) -> Double? {
    let text = text.trimmingCharacters(in: .whitespaces).lowercased()
    if let seconds = Double(text) { return seconds >= 0 ? seconds : nil }
    var total = 0.0
    var number = ""
    var index = text.startIndex
    var sawUnit = false
    while index < text.endIndex {
        let character = text[index]
        if character.isNumber || character == "." {
            number.append(character)
            index = text.index(after: index)
            continue
        }
        var unit = ""
        while index < text.endIndex, text[index].isLetter { unit.append(text[index]); index = text.index(after: index) }
        guard let value = Double(number) else { return nil }
        switch unit {
        case "ms": total += value / 1000
        case "s": total += value
        case "m": total += value * 60
        case "h": total += value * 3600
        default: return nil
        }
        number = ""
        sawUnit = true
    }
    guard number.isEmpty, sawUnit else { return nil }
    return total
}

func formatDuration(_ seconds: Double) -> String {
    if seconds > 0, seconds < 1 { return String(format: "%.0fms", seconds * 1000) }
    let whole = Int(seconds.rounded())
    if whole < 60 { return "\(whole)s" }
    if whole % 60 == 0 { return "\(whole / 60)m" }
    return "\(whole / 60)m\(whole % 60)s"
}
