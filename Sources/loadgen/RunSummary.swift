import Foundation

/// Percentiles of one histogram, in milliseconds.
struct LatencyFigures: Sendable, Codable, Equatable {
    let p50: Double, p90: Double, p95: Double, p99: Double, p999: Double, max: Double, mean: Double

    enum CodingKeys: String, CodingKey { case p50, p90, p95, p99, p999 = "p99_9", max, mean }

    init(_ histogram: LatencyHistogram) {
        p50 = histogram.milliseconds(at: 50); p90 = histogram.milliseconds(at: 90); p95 = histogram.milliseconds(at: 95)
        p99 = histogram.milliseconds(at: 99); p999 = histogram.milliseconds(at: 99.9)
        max = histogram.totalCount == 0 ? 0 : Double(histogram.max) / 1000
        mean = histogram.totalCount == 0 ? 0 : histogram.mean / 1000
    }

    func value(at percentile: Double) -> Double? {
        switch percentile {
        case 50: return p50
        case 90: return p90
        case 95: return p95
        case 99: return p99
        case 99.9: return p999
        default: return nil
        }
    }
}

/// One phase, or the whole run, in the summary.
struct PhaseSummary: Sendable, Codable, Equatable {
    let name: String
    let shape: String
    let plannedSeconds: Double
    let actualSeconds: Double
    let targetCount: Int
    let targetRate: Double
    let sent: Int
    let achievedRate: Double
    let achievedRatio: Double
    let completed: Int
    let dropped: Int
    let errors: Int
    let errorRatio: Double
    let results: [String: Int]
    let latency: LatencyFigures
    let serviceTime: LatencyFigures
    let sendLag: LatencyFigures
    let faults: [String]
    /// Seconds from the run's start (`started_at_unix`) to this phase's start.
    var startSeconds: Double = 0
    /// The phase's histograms, so that the summaries of shards merge exactly.
    var histograms: PhaseHistograms?

    enum CodingKeys: String, CodingKey {
        case startSeconds = "start_s", histograms
        case name, shape, plannedSeconds = "planned_s", actualSeconds = "actual_s", targetCount = "target_count", targetRate = "target_rate"
        case sent, achievedRate = "achieved_rate", achievedRatio = "achieved_ratio", completed, dropped, errors, errorRatio = "error_ratio"
        case results, latency = "latency_ms", serviceTime = "service_time_ms", sendLag = "send_lag_ms", faults
    }

    init(name: String, shape: String, plannedSeconds: Double, actualSeconds: Double, scheduled: Int, tally: PhaseTally, faults: [String]) {
        self.name = name
        self.shape = shape
        self.plannedSeconds = plannedSeconds
        self.actualSeconds = actualSeconds
        targetCount = scheduled
        let seconds = max(actualSeconds, 0.001)
        targetRate = Double(scheduled) / seconds
        sent = tally.sent
        achievedRate = Double(tally.sent) / seconds
        achievedRatio = scheduled > 0 ? Double(tally.sent) / Double(scheduled) : 1
        completed = tally.completed
        dropped = tally.dropped
        errors = tally.errors
        errorRatio = tally.completed > 0 ? Double(tally.errors) / Double(tally.completed) : 0
        results = Dictionary(uniqueKeysWithValues: tally.results.map { ($0.key.rawValue, $0.value) })
        latency = LatencyFigures(tally.latency)
        serviceTime = LatencyFigures(tally.serviceTime)
        sendLag = LatencyFigures(tally.sendLag)
        self.faults = faults
        histograms = PhaseHistograms(tally)
    }
}

/// A threshold and what the run showed.
struct ThresholdVerdict: Sendable, Codable, Equatable {
    let threshold: String
    let observed: Double?
    let passed: Bool
}

/// How a run ended, and the exit code that says it.
enum RunResult: String, Sendable, Codable {
    case passed, thresholdsFailed = "thresholds_failed", interrupted

    var exitCode: Int32 {
        switch self {
        case .passed: return ExitStatus.passed
        case .thresholdsFailed: return ExitStatus.thresholdsFailed
        case .interrupted: return ExitStatus.interrupted
        }
    }
}

/// The versioned JSON summary (`--summary-json`).
struct RunSummary: Sendable, Codable {
    static let currentSchema = "cloudbill.loadgen.summary/v1"

    var schema = currentSchema
    let scenario: String
    let seed: String
    let gatewayURL: String
    let startedAt: String
    /// The same instant as seconds since 1970, to the microsecond: harnesses line phases up with Prometheus' clock.
    let startedAtUnix: Double
    let phases: [PhaseSummary]
    let total: PhaseSummary
    let alerts: [AlertObservation]
    let expectedAlerts: [String]
    let faults: [FaultEvent]
    let thresholds: [ThresholdVerdict]
    let result: RunResult
    let exitCode: Int32
    let timeline: [TimelinePoint]
    /// Which slice of the schedule this run sent (`--shard`): `0/1` for a whole run,
    /// `merged N` for the merge of N shards (`loadgen merge`).
    var shard = Shard.whole.description
    /// The scenario as run, so that `loadgen merge` can rebuild phases and thresholds.
    var definition: Scenario?
    /// For a merged run: what each shard sent.
    var shards: [ShardRate]?

    enum CodingKeys: String, CodingKey {
        case schema, scenario, seed, gatewayURL = "gateway_url", startedAt = "started_at", startedAtUnix = "started_at_unix", phases, total, alerts
        case expectedAlerts = "expected_alerts", faults, thresholds, result, exitCode = "exit_code", timeline, shard, definition, shards
    }

    init(scenario: Scenario, seed: UInt64, gatewayURL: String, record: RunRecord, alerts: [AlertObservation], faults: [FaultEvent], thresholds: [Threshold]) {
        self.scenario = scenario.name
        definition = scenario
        self.seed = String(seed)
        self.gatewayURL = gatewayURL
        startedAt = ISO8601DateFormatter().string(from: record.startedAt)
        startedAtUnix = (record.startedAt.timeIntervalSince1970 * 1e6).rounded() / 1e6
        phases = record.phases.map { run in
            var phase = PhaseSummary(name: run.phase.name, shape: run.phase.shape.description, plannedSeconds: run.phase.duration, actualSeconds: run.end - run.start,
                                     scheduled: run.scheduled, tally: run.tally, faults: run.phase.inject.map(\.description) + (run.phase.clearsFaults ? ["clear"] : []))
            phase.startSeconds = run.start
            return phase
        }
        var all = PhaseTally()
        for run in record.phases { all.merge(run.tally) }
        total = PhaseSummary(name: "total", shape: "", plannedSeconds: scenario.totalDuration,
                             actualSeconds: (record.phases.last?.end ?? 0) - (record.phases.first?.start ?? 0),
                             scheduled: record.phases.reduce(0) { $0 + $1.scheduled }, tally: all, faults: [])
        self.alerts = AlertWatcher.withTimes(alerts, phases: record.phases)
        expectedAlerts = scenario.expectedAlerts
        self.faults = faults
        var verdicts: [ThresholdVerdict] = []
        for threshold in thresholds {
            var tally = all
            if let phaseName = threshold.phase {
                tally = PhaseTally()
                for run in record.phases where run.phase.name == phaseName { tally.merge(run.tally) }
            }
            let summary = threshold.phase == nil ? total : PhaseSummary(name: threshold.phase!, shape: "", plannedSeconds: 0, actualSeconds: 1,
                scheduled: record.phases.filter { $0.phase.name == threshold.phase }.reduce(0) { $0 + $1.scheduled }, tally: tally, faults: [])
            let observed: Double?
            switch threshold.metric {
            case .latencyPercentile(let percentile): observed = summary.latency.value(at: percentile) ?? tally.latency.milliseconds(at: percentile)
            case .maxLatency: observed = summary.latency.max
            case .errorRatio: observed = summary.errorRatio
            case .achievedRatio: observed = summary.achievedRatio
            case .alertsFired:
                observed = scenario.expectedAlerts.isEmpty ? nil : Double(self.alerts.filter { $0.firingAt != nil }.count) / Double(scenario.expectedAlerts.count)
            case .alertsResolved:
                observed = scenario.expectedAlerts.isEmpty ? nil : Double(self.alerts.filter { $0.resolvedAt != nil }.count) / Double(scenario.expectedAlerts.count)
            }
            let passed = observed.map { threshold.holds($0) } ?? false
            verdicts.append(ThresholdVerdict(threshold: threshold.text, observed: observed, passed: passed))
        }
        self.thresholds = verdicts
        result = record.wasInterrupted ? .interrupted : verdicts.allSatisfy(\.passed) ? .passed : .thresholdsFailed
        exitCode = result.exitCode
        timeline = record.timeline
    }

    func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(self)) ?? Data()
    }

    /// The summary a person reads at the end of a run.
    func text() -> String {
        var lines: [String] = []
        lines.append("scenario \(scenario)  seed \(seed)  gateway \(gatewayURL)  started \(startedAt)")
        lines.append("")
        let header = ["phase", "shape", "time", "target", "sent", "rate", "achv", "drop", "err", "p50", "p90", "p95", "p99", "p99.9", "max", "svc p99", "lag p99"]
        var rows: [[String]] = [header]
        for phase in phases + [total] {
            rows.append([
                phase.name, phase.shape, formatDuration(phase.actualSeconds), String(phase.targetCount), String(phase.sent),
                String(format: "%.1f/s", phase.achievedRate), String(format: "%.1f%%", phase.achievedRatio * 100), String(phase.dropped),
                String(format: "%.2f%%", phase.errorRatio * 100),
                ms(phase.latency.p50), ms(phase.latency.p90), ms(phase.latency.p95), ms(phase.latency.p99), ms(phase.latency.p999), ms(phase.latency.max),
                ms(phase.serviceTime.p99), ms(phase.sendLag.p99),
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            lines.append(row.enumerated().map { column, cell in
                column < 2 ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                           : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  "))
        }
        lines.append("")
        lines.append("latency = completed − intended (includes queueing behind slow answers); svc = completed − sent; lag = sent − intended")
        for phase in phases + [total] {
            let classes = phase.results.keys.sorted().map { "\($0) \(phase.results[$0]!)" }.joined(separator: "  ")
            lines.append("status \(phase.name): \(classes.isEmpty ? "none" : classes)\(phase.dropped > 0 ? "  dropped \(phase.dropped)" : "")")
        }
        for event in faults {
            lines.append(String(format: "fault  %7.1fs  ", event.at) + (event.succeeded ? "ok      " : "FAILED  ") + event.action + (event.succeeded ? "" : "  (\(event.detail))"))
        }
        for alert in alerts {
            let fired = alert.firingAt.map { String(format: "fired at %.0fs", $0) } ?? "did not fire"
            let detect = alert.detectSeconds.map { String(format: " (detect %.0fs)", $0) } ?? ""
            let resolved = alert.resolvedAt.map { String(format: ", resolved at %.0fs", $0) } ?? ""
            let resolve = alert.resolveSeconds.map { String(format: " (resolve %.0fs)", $0) } ?? ""
            lines.append("alert  \(alert.name): \(fired)\(detect)\(resolved)\(resolve)")
        }
        for verdict in thresholds {
            let observed = verdict.observed.map { String(format: "%.4g", $0) } ?? "n/a"
            lines.append("threshold \(verdict.passed ? "PASS" : "FAIL")  \(verdict.threshold)  (observed \(observed))")
        }
        lines.append("result: \(result.rawValue) (exit \(exitCode))")
        return lines.joined(separator: "\n")
    }

    private func ms(_ value: Double) -> String {
        value >= 1000 ? String(format: "%.2fs", value / 1000) : String(format: "%.1fms", value)
    }
}
