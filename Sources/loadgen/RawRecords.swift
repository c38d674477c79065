import Foundation
import Synchronization

/// Writes the run as NDJSON: a `run` line, one `request` line per request (dropped ones
/// too), a `phase` line as each phase ends, `alert` and `fault` lines, and an `end` line.
/// `loadgen report` rebuilds the summary from it.
final class RawRecordWriter: Sendable {
    static let schema = "cloudbill.loadgen.raw/v1"
    /// Guards the file and its write buffer; taken once per request.
    private let state: Mutex<(handle: FileHandle, buffer: [UInt8])>

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw ConfigurationError(field: "--raw", message: "cannot create \(path)")
        }
        state = Mutex((try FileHandle(forWritingTo: URL(fileURLWithPath: path)), []))
    }

    private func append(_ line: String, flush: Bool = false) {
        state.withLock { state in
            state.buffer.append(contentsOf: line.utf8)
            state.buffer.append(0x0A)
            if flush || state.buffer.count > 1 << 16 {
                state.handle.write(Data(state.buffer))
                state.buffer.removeAll(keepingCapacity: true)
            }
        }
    }

    private func append(object: [String: Any], flush: Bool = true) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        append(String(decoding: data, as: UTF8.self), flush: flush)
    }

    func writeHeader(scenario: Scenario, seed: UInt64, gatewayURL: String, settings: RunSettings) {
        let scenarioJSON = (try? JSONEncoder().encode(scenario)).flatMap { try? JSONSerialization.jsonObject(with: $0) } ?? [:]
        append(object: [
            "type": "run", "schema": Self.schema, "scenario": scenarioJSON, "seed": String(seed), "gateway_url": gatewayURL,
            "connections": settings.connections, "max_in_flight": settings.maxInFlight, "timeout_s": settings.timeout,
            "started_at": ISO8601DateFormatter().string(from: Date()),
        ])
    }

    func write(_ record: RequestRecord) {
        var line = "{\"type\":\"request\",\"phase\":\(record.phase),\"seq\":\(record.sequence),\"tenant\":\(record.tenant),\"op\":\"\(record.operation.rawValue)\",\"intended_us\":\(record.intended)"
        if let sent = record.sent { line += ",\"sent_us\":\(sent)" }
        if let completed = record.completed { line += ",\"completed_us\":\(completed)" }
        if let status = record.status { line += ",\"status\":\(status)" }
        line += ",\"result\":\"\(record.result?.rawValue ?? "dropped")\"}"
        append(line)
    }

    func writePhase(index: Int, name: String, start: Double, end: Double, scheduled: Int) {
        append(object: ["type": "phase", "index": index, "name": name, "start_s": start, "end_s": end, "scheduled": scheduled])
    }

    func writeAlerts(_ observations: [AlertObservation]) {
        for observation in observations {
            guard let data = try? JSONEncoder().encode(observation), var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { continue }
            object["type"] = "alert"
            append(object: object)
        }
    }

    func writeEvent(_ event: FaultEvent) {
        append(object: ["type": "fault", "at_s": event.at, "action": event.action, "ok": event.succeeded, "detail": event.detail])
    }

    func finish(interrupted: Bool) {
        append(object: ["type": "end", "interrupted": interrupted])
        state.withLock { state in try? state.handle.close() }
    }
}

/// A saved raw run, read back.
struct RawRun {
    var scenario: Scenario
    var seed: UInt64
    var gatewayURL: String
    var record: RunRecord
    var alerts: [AlertObservation]
    var faults: [FaultEvent]

    /// Reads the file as a stream of lines: memory stays flat however many requests it holds
    /// (per-phase histograms, one small row per second, and a sliding window of seconds).
    static func read(path: String) throws(ConfigurationError) -> RawRun {
        var scenario: Scenario?
        var seed: UInt64 = 0
        var gatewayURL = ""
        var tallies: [Int: PhaseTally] = [:]
        var phaseLines: [(Int, String, Double, Double, Int)] = []
        var alerts: [AlertObservation] = []
        var faults: [FaultEvent] = []
        var interrupted = false
        var startedAt = Date()
        var timeline = TimelineBuilder()
        try forEachLine(of: path) { (line, number) throws(ConfigurationError) in
            guard let object = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any], let type = object["type"] as? String else {
                throw ConfigurationError(field: "RAW line \(number)", message: "not a JSON record")
            }
            switch type {
            case "run":
                guard object["schema"] as? String == RawRecordWriter.schema, let scenarioObject = object["scenario"],
                      let scenarioData = try? JSONSerialization.data(withJSONObject: scenarioObject),
                      let decoded = try? JSONDecoder().decode(Scenario.self, from: scenarioData)
                else { throw ConfigurationError(field: "RAW line \(number)", message: "not a \(RawRecordWriter.schema) header") }
                scenario = decoded
                seed = UInt64(object["seed"] as? String ?? "") ?? 0
                gatewayURL = object["gateway_url"] as? String ?? ""
                if let text = object["started_at"] as? String, let date = ISO8601DateFormatter().date(from: text) { startedAt = date }
            case "request":
                let phase = object["phase"] as? Int ?? 0
                let resultText = object["result"] as? String ?? "dropped"
                let record = RequestRecord(
                    phase: phase, sequence: object["seq"] as? Int ?? 0, tenant: object["tenant"] as? Int ?? 0,
                    operation: Operation(rawValue: object["op"] as? String ?? "") ?? .ping,
                    intended: (object["intended_us"] as? NSNumber)?.uint64Value ?? 0,
                    sent: (object["sent_us"] as? NSNumber)?.uint64Value, completed: (object["completed_us"] as? NSNumber)?.uint64Value,
                    status: object["status"] as? Int, result: ResultClass(rawValue: resultText)
                )
                tallies[phase, default: PhaseTally()].record(record)
                timeline.add(record)
            case "phase":
                phaseLines.append((object["index"] as? Int ?? 0, object["name"] as? String ?? "", (object["start_s"] as? NSNumber)?.doubleValue ?? 0,
                                   (object["end_s"] as? NSNumber)?.doubleValue ?? 0, object["scheduled"] as? Int ?? 0))
            case "alert":
                if let decoded = try? JSONDecoder().decode(AlertObservation.self, from: line) { alerts.append(decoded) }
            case "fault":
                faults.append(FaultEvent(at: (object["at_s"] as? NSNumber)?.doubleValue ?? 0, action: object["action"] as? String ?? "",
                                         succeeded: object["ok"] as? Bool ?? false, detail: object["detail"] as? String ?? ""))
            case "end":
                interrupted = object["interrupted"] as? Bool ?? false
            default:
                break
            }
        }
        guard let scenario else { throw ConfigurationError(field: "RAW", message: "\(path) has no run header") }
        let phases = phaseLines.compactMap { line -> PhaseRun? in
            guard line.0 < scenario.phases.count else { return nil }
            return PhaseRun(index: line.0, phase: scenario.phases[line.0], start: line.2, end: line.3, scheduled: line.4, tally: tallies[line.0] ?? PhaseTally())
        }
        return RawRun(scenario: scenario, seed: seed, gatewayURL: gatewayURL,
                      record: RunRecord(startedAt: startedAt, phases: phases, timeline: timeline.finish(phases: phases), wasInterrupted: interrupted),
                      alerts: alerts, faults: faults)
    }
}

/// Calls `body` with each non-empty line of the file at `path` and its line number, reading
/// 1 MiB at a time.
func forEachLine(of path: String, _ body: (Data, Int) throws(ConfigurationError) -> Void) throws(ConfigurationError) {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw ConfigurationError(field: "RAW", message: "cannot read \(path)") }
    defer { try? handle.close() }
    var pending = Data()
    var number = 0
    while true {
        let chunk: Data
        do { chunk = try handle.read(upToCount: 1 << 20) ?? Data() } catch {
            throw ConfigurationError(field: "RAW", message: "cannot read \(path): \(error)")
        }
        if chunk.isEmpty { break }
        pending.append(chunk)
        var start = pending.startIndex
        while let newline = pending[start...].firstIndex(of: 0x0A) {
            number += 1
            if newline > start { try body(Data(pending[start..<newline]), number) }
            start = newline + 1
        }
        pending = Data(pending[start...])
    }
    if !pending.isEmpty { try body(pending, number + 1) }
}

/// Rebuilds the per-second timeline from raw request records (`loadgen report`), the way
/// the engine's reporter counts it live: second `s` covers [s − 1, s) from the run's start;
/// due and dropped count at the intended time, sent at the sent time, completions, errors
/// and latency at the completed time.
///
/// Memory stays bounded: one small counter row per second of the run, and latency
/// histograms only for a sliding window of recent seconds. The raw file is written as
/// requests complete, so completion times arrive almost in order; a second's p50/p99 are
/// computed and its histogram dropped once completions `window` seconds later have been
/// seen (a straggler older than that still counts, just not in the percentiles).
struct TimelineBuilder {
    private struct Row {
        var target = 0, sent = 0, completed = 0, errors = 0, dropped = 0
        var p50 = 0.0, p99 = 0.0
    }
    static let window = 5
    private var rows: [Row] = []
    private var open: [Int: LatencyHistogram] = [:]
    private var newestCompleted = 0

    private mutating func row(_ second: Int) -> Int {
        if rows.count <= second { rows.append(contentsOf: repeatElement(Row(), count: second - rows.count + 1)) }
        return second
    }

    private static func second(_ micros: UInt64) -> Int { Int(micros / 1_000_000) + 1 }

    mutating func add(_ record: RequestRecord) {
        let due = row(Self.second(record.intended))
        rows[due].target += 1
        guard let result = record.result else { rows[due].dropped += 1; return }
        if let sent = record.sent {
            let index = row(Self.second(sent))
            rows[index].sent += 1
        }
        guard let completed = record.completed else { return }
        let second = row(Self.second(completed))
        rows[second].completed += 1
        if result.isError { rows[second].errors += 1 }
        if let latency = record.latency, second > newestCompleted - Self.window {
            open[second, default: makeLatencyHistogram()].recordClamped(latency)
        }
        if second > newestCompleted {
            newestCompleted = second
            for old in open.keys where old <= newestCompleted - Self.window { close(old) }
        }
    }

    private mutating func close(_ second: Int) {
        guard let histogram = open.removeValue(forKey: second) else { return }
        rows[second].p50 = histogram.milliseconds(at: 50)
        rows[second].p99 = histogram.milliseconds(at: 99)
    }

    /// The points, second 1 onwards; `phases` name the phase of each second.
    mutating func finish(phases: [PhaseRun]) -> [TimelinePoint] {
        for second in Array(open.keys) { close(second) }
        var inFlight = 0
        var points: [TimelinePoint] = []
        for second in rows.indices.dropFirst() {
            let row = rows[second]
            inFlight += row.target - row.dropped - row.completed
            let middle = Double(second) - 0.5
            let phase = phases.last { $0.start <= middle }?.phase.name ?? phases.first?.phase.name ?? ""
            points.append(TimelinePoint(second: second, phase: phase, target: row.target, sent: row.sent, completed: row.completed, errors: row.errors,
                                        dropped: row.dropped, inFlight: max(inFlight, 0), p50Milliseconds: row.p50, p99Milliseconds: row.p99))
        }
        return points
    }
}
