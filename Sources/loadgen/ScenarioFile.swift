import Foundation
import Yams

/// Reads a scenario from YAML, naming the field of the first thing that is wrong.
///
/// ```yaml
/// name: latency-p95
/// description: Billing answers slowly until HighLatencyP95 fires.
/// rate: 100                 # base rate, req/s; `--rate` replaces it
/// spacing: uniform          # or poisson
/// mix: cloudbill            # or {ping: /health}
/// expect_alerts: [HighLatencyP95]
/// thresholds: ["alert fired"]
/// phases:
///   - {name: baseline, duration: 1m, rate: 1x}
///   - {name: inject, duration: 10s, inject: [{service: billing, fault: latency, delay_ms: 600}]}
///   - {name: hold, duration: 8m, until: alerts_firing}
///   - {name: clear, duration: 10s, clear: true}
///   - {name: recover, duration: 6m, until: alerts_resolved, ramp: {from: 1x, to: 1x}}
/// ```
enum ScenarioFile {
    static let topLevelKeys: Set<String> = ["name", "description", "rate", "spacing", "mix", "expect_alerts", "thresholds", "phases"]
    static let phaseKeys: Set<String> = ["name", "duration", "rate", "ramp", "steps", "inject", "clear", "until"]

    static func load(path: String) throws(ConfigurationError) -> Scenario {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(field: "scenario", message: "cannot read \(path): \(error.localizedDescription)")
        }
        return try parse(text, defaultName: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent)
    }

    static func parse(_ text: String, defaultName: String = "custom") throws(ConfigurationError) -> Scenario {
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch {
            throw ConfigurationError(field: "yaml", message: "not valid YAML: \(error)")
        }
        guard let root = document as? [String: Any] else {
            throw ConfigurationError(field: "scenario", message: "must be a mapping with at least 'phases'")
        }
        try rejectUnknownKeys(root, allowed: topLevelKeys, path: "")
        let name = try string(root["name"], "name") ?? defaultName
        let summary = try string(root["description"], "description") ?? ""
        let baseRate = try number(root["rate"], "rate") ?? 100
        guard baseRate >= 0 else { throw ConfigurationError(field: "rate", message: "must be ≥ 0, got \(formatNumber(baseRate))") }
        let spacing: ArrivalSpacing
        switch try string(root["spacing"], "spacing") ?? "uniform" {
        case "uniform": spacing = .uniform
        case "poisson": spacing = .poisson
        case let other: throw ConfigurationError(field: "spacing", message: "must be uniform or poisson, got '\(other)'")
        }
        let mix = try parseMix(root["mix"])
        let alerts = try stringList(root["expect_alerts"], "expect_alerts")
        var thresholds: [Threshold] = []
        for (index, text) in try stringList(root["thresholds"], "thresholds").enumerated() {
            do {
                thresholds.append(try Threshold(parsing: text))
            } catch {
                throw ConfigurationError(field: "thresholds[\(index)]", message: error.message)
            }
        }
        guard let rawPhases = root["phases"] else { throw ConfigurationError(field: "phases", message: "is required") }
        guard let phaseList = rawPhases as? [Any], !phaseList.isEmpty else {
            throw ConfigurationError(field: "phases", message: "must be a non-empty list")
        }
        var phases: [Phase] = []
        for (index, raw) in phaseList.enumerated() {
            phases.append(try parsePhase(raw, path: "phases[\(index)]", baseRate: baseRate, index: index))
        }
        if alerts.isEmpty, phases.contains(where: { $0.until != nil }) {
            throw ConfigurationError(field: "expect_alerts", message: "a phase waits on alerts ('until') but no alert is expected")
        }
        return Scenario(name: name, summary: summary, baseRate: baseRate, spacing: spacing, mix: mix, phases: phases, expectedAlerts: alerts, thresholds: thresholds)
    }

    private static func parsePhase(_ raw: Any, path: String, baseRate: Double, index: Int) throws(ConfigurationError) -> Phase {
        guard let map = raw as? [String: Any] else { throw ConfigurationError(field: path, message: "must be a mapping") }
        try rejectUnknownKeys(map, allowed: phaseKeys, path: path)
        let name = try string(map["name"], "\(path).name") ?? "phase\(index + 1)"
        guard let rawDuration = map["duration"] else { throw ConfigurationError(field: "\(path).duration", message: "is required") }
        guard let duration = parseDuration("\(rawDuration)"), duration > 0 else {
            throw ConfigurationError(field: "\(path).duration", message: "'\(rawDuration)' is not a positive duration such as 30s, 5m or 1m30s")
        }
        let shapes = ["rate", "ramp", "steps"].filter { map[$0] != nil }
        guard shapes.count <= 1 else {
            throw ConfigurationError(field: "\(path).\(shapes[1])", message: "a phase has one of rate, ramp or steps, not \(shapes.joined(separator: " and "))")
        }
        let shape: RateShape
        if let ramp = map["ramp"] {
            guard let rampMap = ramp as? [String: Any] else { throw ConfigurationError(field: "\(path).ramp", message: "must be {from: R, to: R}") }
            try rejectUnknownKeys(rampMap, allowed: ["from", "to"], path: "\(path).ramp")
            guard let from = rampMap["from"], let to = rampMap["to"] else {
                throw ConfigurationError(field: "\(path).ramp", message: "needs both 'from' and 'to'")
            }
            shape = .ramp(from: try rate(from, "\(path).ramp.from", baseRate), to: try rate(to, "\(path).ramp.to", baseRate))
        } else if let steps = map["steps"] {
            guard let list = steps as? [Any], !list.isEmpty else { throw ConfigurationError(field: "\(path).steps", message: "must be a non-empty list of rates") }
            var rates: [Double] = []
            for (stepIndex, step) in list.enumerated() { rates.append(try rate(step, "\(path).steps[\(stepIndex)]", baseRate)) }
            shape = .steps(rates)
        } else {
            shape = .constant(try rate(map["rate"] ?? "1x", "\(path).rate", baseRate))
        }
        var inject: [FaultAction] = []
        if let rawInject = map["inject"] {
            let list = rawInject as? [Any] ?? [rawInject]
            for (faultIndex, rawFault) in list.enumerated() {
                inject.append(try parseFault(rawFault, path: "\(path).inject[\(faultIndex)]"))
            }
        }
        let clears: Bool
        switch map["clear"] {
        case nil: clears = false
        case let flag as Bool: clears = flag
        default: throw ConfigurationError(field: "\(path).clear", message: "must be true or false")
        }
        var until: AlertGoal?
        if let rawUntil = map["until"] {
            guard let goal = AlertGoal(rawValue: "\(rawUntil)") else {
                throw ConfigurationError(field: "\(path).until", message: "must be alerts_firing or alerts_resolved, got '\(rawUntil)'")
            }
            until = goal
        }
        return Phase(name: name, duration: duration, shape: shape, inject: inject, clearsFaults: clears, until: until)
    }

    private static func parseFault(_ raw: Any, path: String) throws(ConfigurationError) -> FaultAction {
        guard let map = raw as? [String: Any] else { throw ConfigurationError(field: path, message: "must be {service: S, fault: KIND, ...} or {stop: COMPONENT}") }
        if let component = map["stop"] {
            try rejectUnknownKeys(map, allowed: ["stop"], path: path)
            let name = "\(component)"
            guard FaultCatalog.stackComponents.contains(name) else {
                throw ConfigurationError(field: "\(path).stop", message: "unknown component '\(name)' (\(FaultCatalog.stackComponents.sorted().joined(separator: ", ")))")
            }
            return .stop(component: name)
        }
        guard let service = try string(map["service"], "\(path).service") else {
            throw ConfigurationError(field: "\(path).service", message: "is required (or use {stop: COMPONENT})")
        }
        guard FaultCatalog.servicePorts[service] != nil else {
            throw ConfigurationError(field: "\(path).service", message: "unknown service '\(service)' (\(FaultCatalog.servicePorts.keys.sorted().joined(separator: ", ")))")
        }
        guard let kind = try string(map["fault"], "\(path).fault") else { throw ConfigurationError(field: "\(path).fault", message: "is required") }
        guard let parameterNames = FaultCatalog.kinds[kind] else {
            throw ConfigurationError(field: "\(path).fault", message: "unknown fault '\(kind)' (\(FaultCatalog.kinds.keys.sorted().joined(separator: ", ")))")
        }
        var parameters: [String: Double] = [:]
        for (key, value) in map where key != "service" && key != "fault" {
            guard parameterNames.contains(key) || key == "duration_s" else {
                throw ConfigurationError(field: "\(path).\(key)", message: "not a parameter of \(kind) (\((parameterNames + ["duration_s"]).joined(separator: ", ")))")
            }
            guard let number = try number(value, "\(path).\(key)") else { continue }
            parameters[key] = number
        }
        return .service(service: service, kind: kind, parameters: parameters)
    }

    private static func parseMix(_ raw: Any?) throws(ConfigurationError) -> TrafficMix {
        switch raw {
        case nil: return .cloudbill
        case let name as String where name == "cloudbill": return .cloudbill
        case let name as String where name == "ping": return .ping(path: "/health")
        case let map as [String: Any]:
            try rejectUnknownKeys(map, allowed: ["ping"], path: "mix")
            guard let path = map["ping"] as? String, path.hasPrefix("/") else {
                throw ConfigurationError(field: "mix.ping", message: "must be a path starting with /")
            }
            return .ping(path: path)
        default:
            throw ConfigurationError(field: "mix", message: "must be cloudbill, ping or {ping: /path}")
        }
    }

    /// `120` (req/s) or `2x` / `0.15x` (times the base rate).
    private static func rate(_ raw: Any, _ field: String, _ baseRate: Double) throws(ConfigurationError) -> Double {
        let text = "\(raw)".trimmingCharacters(in: .whitespaces)
        let value: Double?
        if text.hasSuffix("x") { value = Double(text.dropLast()).map { $0 * baseRate } } else { value = Double(text) }
        guard let value, value >= 0, value.isFinite else {
            throw ConfigurationError(field: field, message: "'\(text)' is not a rate such as 100 (req/s) or 2x (times the base rate)")
        }
        return value
    }

    private static func rejectUnknownKeys(_ map: [String: Any], allowed: Set<String>, path: String) throws(ConfigurationError) {
        for key in map.keys.sorted() where !allowed.contains(key) {
            let field = path.isEmpty ? key : "\(path).\(key)"
            throw ConfigurationError(field: field, message: "unknown field (expected one of \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    private static func string(_ raw: Any?, _ field: String) throws(ConfigurationError) -> String? {
        switch raw {
        case nil: return nil
        case let value as String: return value
        case let value as Int: return String(value)
        default: throw ConfigurationError(field: field, message: "must be a string")
        }
    }

    private static func number(_ raw: Any?, _ field: String) throws(ConfigurationError) -> Double? {
        switch raw {
        case nil: return nil
        case let value as Int: return Double(value)
        case let value as Double: return value
        case let value as String:
            guard let number = Double(value) else { throw ConfigurationError(field: field, message: "'\(value)' is not a number") }
            return number
        default: throw ConfigurationError(field: field, message: "must be a number")
        }
    }

    private static func stringList(_ raw: Any?, _ field: String) throws(ConfigurationError) -> [String] {
        switch raw {
        case nil: return []
        case let value as String: return [value]
        case let list as [Any]: return list.map { "\($0)" }
        default: throw ConfigurationError(field: field, message: "must be a list of strings")
        }
    }
}
