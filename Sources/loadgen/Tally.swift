import Histogram
import Synchronization

/// One request as measured, in microseconds from the run's start. A dropped request has
/// only its intended time.
struct RequestRecord: Sendable, Equatable {
    let phase: Int
    let sequence: Int
    let tenant: Int
    let operation: Operation
    let intended: UInt64
    let sent: UInt64?
    let completed: UInt64?
    let status: Int?
    /// nil when the request was dropped at the in-flight cap.
    let result: ResultClass?

    var isDropped: Bool { result == nil }
    /// Completed − intended: what a user waiting since the request was due saw.
    var latency: UInt64? { completed.map { $0 &- min(intended, $0) } }
    /// Completed − sent: how long the server (and the connection) took.
    var serviceTime: UInt64? { guard let sent, let completed else { return nil }; return completed &- min(sent, completed) }
    /// Sent − intended: how late the request left.
    var sendLag: UInt64? { sent.map { $0 &- min(intended, $0) } }
}

/// Microsecond histogram with bounded memory: 1 µs to 10 min at 3 significant digits.
typealias LatencyHistogram = Histogram<UInt32>

func makeLatencyHistogram() -> LatencyHistogram {
    LatencyHistogram(lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
}

extension LatencyHistogram {
    mutating func recordClamped(_ microseconds: UInt64) {
        _ = record(Swift.min(Swift.max(microseconds, 1), 600_000_000))
    }

    /// Milliseconds at `percentile` (0 when empty).
    func milliseconds(at percentile: Double) -> Double {
        totalCount == 0 ? 0 : Double(valueAtPercentile(percentile)) / 1000
    }
}

/// What a phase's requests add up to: counts and three latency histograms.
struct PhaseTally: Sendable {
    var latency = makeLatencyHistogram()
    var serviceTime = makeLatencyHistogram()
    var sendLag = makeLatencyHistogram()
    var results: [ResultClass: Int] = [:]
    var sent = 0
    var dropped = 0

    var completed: Int { results.values.reduce(0, +) }
    var errors: Int { results.filter { $0.key.isError }.reduce(0) { $0 + $1.value } }

    mutating func record(_ record: RequestRecord) {
        guard let result = record.result else { dropped += 1; return }
        sent += 1
        results[result, default: 0] += 1
        if let latency = record.latency { self.latency.recordClamped(latency) }
        if let service = record.serviceTime { serviceTime.recordClamped(service) }
        if let lag = record.sendLag { sendLag.recordClamped(lag) }
    }

    mutating func merge(_ other: PhaseTally) {
        latency.add(other.latency)
        serviceTime.add(other.serviceTime)
        sendLag.add(other.sendLag)
        for (key, value) in other.results { results[key, default: 0] += value }
        sent += other.sent
        dropped += other.dropped
    }
}

/// What one second of the run adds up to, for the live line and the timeline.
struct IntervalTally: Sendable {
    var latency = makeLatencyHistogram()
    var results: [ResultClass: Int] = [:]

    mutating func merge(_ other: IntervalTally) {
        latency.add(other.latency)
        for (key, value) in other.results { results[key, default: 0] += value }
    }
}

/// A recording worker: owns the histograms of the connections mapped to it, so that
/// connections rarely contend; the run merges the workers at the end.
final class RecordingWorker: Sendable {
    private struct State {
        var phases: [Int: PhaseTally] = [:]
        var interval = IntervalTally()
    }
    /// Guards the tallies: taken by the requests of this worker's connections and once a
    /// second by the live reporter.
    private let state = Mutex(State())

    func record(_ record: RequestRecord) {
        state.withLock { state in
            state.phases[record.phase, default: PhaseTally()].record(record)
            if let result = record.result {
                state.interval.results[result, default: 0] += 1
                if let latency = record.latency { state.interval.latency.recordClamped(latency) }
            }
        }
    }

    func takeInterval() -> IntervalTally {
        state.withLock { state in
            defer { state.interval = IntervalTally() }
            return state.interval
        }
    }

    func phaseTallies() -> [Int: PhaseTally] { state.withLock { $0.phases } }
}
