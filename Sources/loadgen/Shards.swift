import ArgumentParser
import Foundation

/// The slice of a run's schedule one process sends (`--shard i/N`): request `sequence` of
/// the seeded plan belongs to shard `sequence % N`. Every shard computes the whole plan and
/// arrival schedule from the same seed and sends only its own requests, at their own
/// intended times, so N shards together send the single-process run request for request.
struct Shard: Sendable, Equatable, Codable, CustomStringConvertible {
    let index: Int
    let count: Int

    static let whole = Shard(index: 0, count: 1)

    init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// `i/N` with 0 ≤ i < N.
    init(parsing text: String) throws(ConfigurationError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]), count >= 1, (0..<count).contains(index) else {
            throw ConfigurationError(field: "--shard", message: "'\(text)' is not i/N with 0 ≤ i < N (e.g. 0/4)")
        }
        self.init(index: index, count: count)
    }

    func owns(_ sequence: Int) -> Bool { sequence % count == index }

    /// Faults happen once: shard 0 applies and clears them, the others only follow the phases.
    var appliesFaults: Bool { index == 0 }

    var description: String { "\(index)/\(count)" }
}

/// A latency histogram in a JSON summary: its non-empty buckets as `[value, count]` pairs
/// (microseconds). Rebuilt bucket for bucket, so percentiles, max and mean of a merge are
/// those of one histogram that recorded every value.
struct HistogramEncoding: Sendable, Codable, Equatable {
    let buckets: [[UInt64]]

    init(_ histogram: LatencyHistogram) {
        buckets = histogram.recordedValues().map { [$0.value, UInt64($0.count)] }
    }

    func histogram() -> LatencyHistogram {
        var histogram = makeLatencyHistogram()
        for bucket in buckets where bucket.count == 2 {
            _ = histogram.record(Swift.min(Swift.max(bucket[0], 1), 600_000_000), count: UInt32(clamping: bucket[1]))
        }
        return histogram
    }

    init(from decoder: any Decoder) throws { buckets = try decoder.singleValueContainer().decode([[UInt64]].self) }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(buckets)
    }
}

/// A phase's three histograms, so that shard summaries merge exactly (`loadgen merge`).
struct PhaseHistograms: Sendable, Codable, Equatable {
    let latency: HistogramEncoding
    let serviceTime: HistogramEncoding
    let sendLag: HistogramEncoding

    enum CodingKeys: String, CodingKey { case latency = "latency_us", serviceTime = "service_time_us", sendLag = "send_lag_us" }

    init(_ tally: PhaseTally) {
        latency = HistogramEncoding(tally.latency)
        serviceTime = HistogramEncoding(tally.serviceTime)
        sendLag = HistogramEncoding(tally.sendLag)
    }
}

/// What one shard of a merged run did, for the report.
struct ShardRate: Sendable, Codable, Equatable {
    let shard: String
    let sent: Int
    let achievedRate: Double
    let errors: Int
    /// Requests sent in each second of the shard's run.
    let sentPerSecond: [Int]

    enum CodingKeys: String, CodingKey { case shard, sent, achievedRate = "achieved_rate", errors, sentPerSecond = "sent_per_second" }
}

/// Merges the JSON summaries of the N shards of one run into the summary of the whole run.
enum ShardMerge {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The merged summary, and the merged phases (for the report's bands).
    static func merge(_ summaries: [RunSummary]) throws(Failure) -> (summary: RunSummary, phases: [PhaseRun]) {
        guard let first = summaries.first, let scenario = first.definition else {
            throw Failure(description: "no summary, or one written before shards (no scenario definition)")
        }
        let shards = try summaries.map { summary throws(Failure) -> Shard in
            do { return try Shard(parsing: summary.shard) } catch { throw Failure(description: "a summary's shard '\(summary.shard)' is not i/N") }
        }
        let count = shards[0].count
        guard shards.allSatisfy({ $0.count == count }), Set(shards.map(\.index)) == Set(0..<count), shards.count == count else {
            throw Failure(description: "the summaries are shards \(shards.map(\.description).joined(separator: ", ")), not each of 0/\(count) … \(count - 1)/\(count) once")
        }
        for summary in summaries {
            guard summary.definition == scenario, summary.seed == first.seed else {
                throw Failure(description: "shard \(summary.shard) ran another scenario or seed (\(summary.scenario), seed \(summary.seed)) than \(first.scenario), seed \(first.seed)")
            }
            guard summary.phases.count == first.phases.count, summary.phases.allSatisfy({ $0.histograms != nil }) else {
                throw Failure(description: "shard \(summary.shard) has other phases or no histograms")
            }
        }
        let earliest = summaries.map(\.startedAtUnix).min() ?? first.startedAtUnix
        // Phases line up by their place in the scenario; each spans the earliest start and the
        // latest end of the shards, on the clock of the earliest shard.
        let phases = first.phases.indices.map { index -> PhaseRun in
            var tally = PhaseTally()
            var start = Double.infinity, end = 0.0, scheduled = 0
            for summary in summaries {
                let phase = summary.phases[index]
                tally.merge(PhaseTally(summary: phase))
                let offset = summary.startedAtUnix - earliest
                start = Swift.min(start, offset + phase.startSeconds)
                end = Swift.max(end, offset + phase.startSeconds + phase.actualSeconds)
                scheduled += phase.targetCount
            }
            return PhaseRun(index: index, phase: scenario.phases[index], start: start, end: end, scheduled: scheduled, tally: tally)
        }
        // The per-second timeline: counts add up; a second's percentiles are the highest shard's.
        var timeline: [Int: TimelinePoint] = [:]
        for summary in summaries {
            let offset = Int((summary.startedAtUnix - earliest).rounded())
            for point in summary.timeline {
                let second = point.second + offset
                let sum = timeline[second]
                timeline[second] = TimelinePoint(
                    second: second, phase: sum?.phase ?? point.phase, target: (sum?.target ?? 0) + point.target, sent: (sum?.sent ?? 0) + point.sent,
                    completed: (sum?.completed ?? 0) + point.completed, errors: (sum?.errors ?? 0) + point.errors,
                    dropped: (sum?.dropped ?? 0) + point.dropped, inFlight: (sum?.inFlight ?? 0) + point.inFlight,
                    p50Milliseconds: Swift.max(sum?.p50Milliseconds ?? 0, point.p50Milliseconds),
                    p99Milliseconds: Swift.max(sum?.p99Milliseconds ?? 0, point.p99Milliseconds)
                )
            }
        }
        let faultShard = summaries[shards.firstIndex { $0.appliesFaults } ?? 0]
        let record = RunRecord(
            startedAt: Date(timeIntervalSince1970: earliest), phases: phases, timeline: timeline.keys.sorted().compactMap { timeline[$0] },
            wasInterrupted: summaries.contains { $0.result == .interrupted }
        )
        var merged = RunSummary(scenario: scenario, seed: UInt64(first.seed) ?? 0, gatewayURL: first.gatewayURL, record: record,
                                alerts: faultShard.alerts, faults: faultShard.faults, thresholds: scenario.thresholds)
        merged.shard = "merged \(count)"
        merged.shards = zip(shards, summaries).sorted { $0.0.index < $1.0.index }.map { shard, summary in
            ShardRate(shard: shard.description, sent: summary.total.sent, achievedRate: summary.total.achievedRate, errors: summary.total.errors,
                      sentPerSecond: summary.timeline.map(\.sent))
        }
        return (merged, phases)
    }
}

extension PhaseTally {
    /// The tally a phase summary was made from (its histograms and counts).
    init(summary phase: PhaseSummary) {
        self.init()
        if let histograms = phase.histograms {
            latency = histograms.latency.histogram()
            serviceTime = histograms.serviceTime.histogram()
            sendLag = histograms.sendLag.histogram()
        }
        for (name, count) in phase.results {
            if let result = ResultClass(rawValue: name) { results[result, default: 0] += count }
        }
        sent = phase.sent
        dropped = phase.dropped
    }
}

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge the JSON summaries of the shards of one run (loadgen run --shard i/N) into the summary of the whole run."
    )

    @Argument(help: "The --summary-json files of shards 0/N … N-1/N, in any order.")
    var summaries: [String]

    @Option(help: "Write the merged JSON summary here.")
    var summaryJSON: String?

    @Option(help: "Write the self-contained HTML report of the merged run here.")
    var html: String?

    func run() throws {
        var decoded: [RunSummary] = []
        for path in summaries {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw LoadgenFailure.badConfiguration(ConfigurationError(field: "SUMMARIES", message: "cannot read \(path)"))
            }
            do { decoded.append(try JSONDecoder().decode(RunSummary.self, from: data)) } catch {
                throw LoadgenFailure.badConfiguration(ConfigurationError(field: "SUMMARIES", message: "\(path) is not a loadgen JSON summary: \(error)"))
            }
        }
        let merged: RunSummary, phases: [PhaseRun]
        do { (merged, phases) = try ShardMerge.merge(decoded) } catch {
            throw LoadgenFailure.badConfiguration(ConfigurationError(field: "SUMMARIES", message: error.description))
        }
        print(merged.text())
        if let summaryJSON { try merged.json().write(to: URL(fileURLWithPath: summaryJSON)) }
        if let html { try HTMLReport(summary: merged, phases: phases).write(to: html) }
        if merged.exitCode != 0 { throw ExitCode(merged.exitCode) }
    }
}
