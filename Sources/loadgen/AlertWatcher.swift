import Foundation
import Synchronization

/// When an expected alert was seen pending, firing and resolved, in seconds from the run's start.
struct AlertObservation: Sendable, Codable, Equatable {
    let name: String
    var pendingAt: Double?
    var firingAt: Double?
    var resolvedAt: Double?
    /// Firing − the start of the first phase that injected a fault.
    var detectSeconds: Double?
    /// Resolved − the start of the first phase that cleared the faults.
    var resolveSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case name, pendingAt = "pending_at_s", firingAt = "firing_at_s", resolvedAt = "resolved_at_s"
        case detectSeconds = "detect_s", resolveSeconds = "resolve_s"
    }
}

/// Polls Prometheus' `/api/v1/alerts` and notes when the expected alerts change state.
///
/// Only an alert that became active (its `activeAt`) at or after the fault started counts:
/// an alert already pending or firing before, from an earlier failure, says nothing about
/// this one. Before a phase injects a fault, "the fault started" is the watcher's creation.
///
/// A budget burn is several rules of one name, told apart by `burn_rate` (14.4x, 6x, ...):
/// the slower ones read windows of hours and, by design, keep firing long after the failure.
/// Its resolution is that of the fastest burn rate that fired, as the alert tour judges it.
final class AlertWatcher: Sendable {
    let prometheusURL: String
    let expected: [String]
    let transport: Transport
    /// Guards the observations: written by the polling task, read by the engine.
    private let observations: Mutex<[String: AlertObservation]>
    private let origin: ContinuousClock.Instant
    /// Wall-clock seconds (Unix time) before which an alert's activation does not count.
    private let notBefore: Mutex<Double>
    /// Per alert name, the fastest `burn_rate` that fired (a budget burn's).
    private let fastestBurnFired = Mutex<[String: Double]>([:])

    /// Only alerts with one of these `service` labels count (nil: any): a scenario that
    /// burns billing's CPU waits for billing's HighCPUUsage, not another service's.
    let services: Set<String>?

    init(prometheusURL: String, expected: [String], transport: Transport, origin: ContinuousClock.Instant, linger: Double = 0, services: Set<String>? = nil) {
        self.prometheusURL = prometheusURL
        self.services = services
        self.linger = linger
        self.expected = expected
        self.transport = transport
        self.origin = origin
        notBefore = Mutex(Date().timeIntervalSince1970)
        observations = Mutex(Dictionary(uniqueKeysWithValues: expected.map { ($0, AlertObservation(name: $0)) }))
    }

    /// Seconds every expected alert must have been firing before `allFiring` holds, so that
    /// Alertmanager's first notification (after its group_wait) goes out before the fault clears.
    let linger: Double

    var allFiring: Bool {
        let now = secondsSinceOrigin
        return observations.withLock { $0.values.allSatisfy { $0.firingAt.map { now - $0 >= linger } ?? false } }
    }

    private var secondsSinceOrigin: Double {
        let elapsed = ContinuousClock.now - origin
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
    var allResolved: Bool { observations.withLock { $0.values.allSatisfy { $0.firingAt != nil && $0.resolvedAt != nil } } }

    func snapshot() -> [AlertObservation] { observations.withLock { obs in expected.compactMap { obs[$0] } } }

    /// The fault starts now (called before the first injection): alerts active from an
    /// earlier time no longer count.
    func faultStarted(at date: Date = Date()) {
        notBefore.withLock { $0 = date.timeIntervalSince1970 }
    }

    /// One poll; false when Prometheus did not answer.
    @discardableResult
    func poll() async -> Bool {
        guard let answer = try? await transport.send("GET", prometheusURL + "/api/v1/alerts"), answer.status == 200,
              let data = answer.json?["data"] as? [String: Any], let alerts = data["alerts"] as? [[String: Any]]
        else { return false }
        observe(alerts)
        return true
    }

    /// Notes the states of the expected alerts in one `/api/v1/alerts` answer's `alerts`.
    func observe(_ alerts: [[String: Any]]) {
        let threshold = notBefore.withLock { $0 }
        var counted: [(name: String, state: String, burnRate: Double?)] = []
        for alert in alerts {
            guard let labels = alert["labels"] as? [String: Any], let name = labels["alertname"] as? String, let state = alert["state"] as? String else { continue }
            if let services, !services.contains(labels["service"] as? String ?? "") { continue }
            // An alert without a readable activeAt counts: Prometheus always sends one.
            if let activeAt = (alert["activeAt"] as? String).flatMap(Self.unixTime), activeAt < threshold { continue }
            let burnRate = (labels["burn_rate"] as? String).flatMap { Double($0.hasSuffix("x") ? String($0.dropLast()) : $0) }
            counted.append((name, state, burnRate))
        }
        let fastest = fastestBurnFired.withLock { fastest in
            for alert in counted where alert.state == "firing" {
                if let rate = alert.burnRate { fastest[alert.name] = max(fastest[alert.name] ?? 0, rate) }
            }
            return fastest
        }
        var states: [String: String] = [:]
        for alert in counted {
            // Once a burn rate fired, the slower ones of that name no longer count.
            if let rate = alert.burnRate, let limit = fastest[alert.name], rate < limit { continue }
            if states[alert.name] != "firing" { states[alert.name] = alert.state }
        }
        let now = secondsSinceOrigin
        observations.withLock { observations in
            for name in expected {
                var observation = observations[name] ?? AlertObservation(name: name)
                switch states[name] {
                case "pending": if observation.pendingAt == nil { observation.pendingAt = now }
                case "firing":
                    if observation.firingAt == nil { observation.firingAt = now }
                    observation.resolvedAt = nil
                default:
                    if observation.firingAt != nil, observation.resolvedAt == nil { observation.resolvedAt = now }
                }
                observations[name] = observation
            }
        }
    }

    /// One formatter for every poll (ISO8601DateFormatter is documented as thread-safe).
    nonisolated(unsafe) private static let internetDateTime: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter
    }()

    /// Unix seconds of an RFC 3339 time as Prometheus writes it ("2026-12-06T21:45:55.123456789Z",
    /// fractional seconds of any length, `Z` or a numeric offset); nil when it is not one.
    static func unixTime(_ text: String) -> Double? {
        var whole = text
        var fraction = 0.0
        if let dot = text.firstIndex(of: ".") {
            let digits = text[text.index(after: dot)...].prefix { $0.isNumber }
            guard !digits.isEmpty, let value = Double("0." + digits) else { return nil }
            fraction = value
            whole = String(text[..<dot]) + String(text[text.index(after: dot)...].dropFirst(digits.count))
        }
        guard let date = internetDateTime.date(from: whole) else { return nil }
        return date.timeIntervalSince1970 + fraction
    }

    /// Polls every `interval` seconds until cancelled.
    func watch(every interval: Double = 5) async {
        while !Task.isCancelled {
            await poll()
            try? await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
        }
    }

    /// Fills in detect and resolve times from the phases' start times.
    static func withTimes(_ observations: [AlertObservation], phases: [PhaseRun]) -> [AlertObservation] {
        let injected = phases.first { !$0.phase.inject.isEmpty }?.start
        let cleared = phases.first { $0.phase.clearsFaults }?.start
        return observations.map { observation in
            var copy = observation
            if let firing = observation.firingAt, let injected { copy.detectSeconds = firing - injected }
            if let resolved = observation.resolvedAt, let cleared { copy.resolveSeconds = resolved - cleared }
            return copy
        }
    }
}
