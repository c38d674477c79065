import Foundation
import Synchronization

/// A FIFO semaphore over connection slots: a request holds a slot from the moment it is
/// sent until its answer, so that `sent` is when a connection really was free.
final class ConnectionSlots: Sendable {
    private struct State {
        var free: [Int]
        var waiters: [CheckedContinuation<Int, Never>] = []
        var head = 0
    }
    /// Guards the free list and the queue of waiting requests.
    private let state: Mutex<State>

    init(count: Int) { state = Mutex(State(free: Array((0..<max(count, 1)).reversed()))) }

    func acquire() async -> Int {
        await withCheckedContinuation { continuation in
            let slot: Int? = state.withLock { state in
                if let slot = state.free.popLast() { return slot }
                state.waiters.append(continuation)
                return nil
            }
            if let slot { continuation.resume(returning: slot) }
        }
    }

    func release(_ slot: Int) {
        let waiter: CheckedContinuation<Int, Never>? = state.withLock { state in
            guard state.head < state.waiters.count else { state.free.append(slot); return nil }
            let next = state.waiters[state.head]
            state.head += 1
            if state.head > 1024, state.head * 2 > state.waiters.count {
                state.waiters.removeFirst(state.head)
                state.head = 0
            }
            return next
        }
        waiter?.resume(returning: slot)
    }
}

/// The engine's shared counters, read once a second by the live reporter.
final class EngineCounters: Sendable {
    let inFlight = Atomic<Int>(0)
    let sentInInterval = Atomic<Int>(0)
    let dueInInterval = Atomic<Int>(0)
    let droppedInInterval = Atomic<Int>(0)
    /// Guards the name of the running phase.
    let currentPhase: Mutex<String>
    /// Guards the points of the timeline.
    let timeline = Mutex<[TimelinePoint]>([])

    init(firstPhase: String) { currentPhase = Mutex(firstPhase) }
}

/// Set once to stop a run: by a signal, or by a test.
final class StopSignal: Sendable {
    private let stopped = Atomic<Bool>(false)
    var isStopped: Bool { stopped.load(ordering: .acquiring) }
    func stop() { stopped.store(true, ordering: .releasing) }
}

/// How a run is shaped, apart from what its requests do.
struct RunSettings: Sendable {
    var seed: UInt64 = 1
    var connections = 64
    var maxInFlight = 2000
    /// Seconds before a request counts as a timeout.
    var timeout = 10.0
    var printsLiveLine = true
    /// Seconds the expected alerts must have been firing before an `until: alerts_firing` phase ends.
    var linger = 0.0
    /// The slice of the schedule this process sends.
    var shard = Shard.whole
}

/// One second of the run.
struct TimelinePoint: Sendable, Codable, Equatable {
    let second: Int
    let phase: String
    let target: Int
    let sent: Int
    let completed: Int
    let errors: Int
    let dropped: Int
    let inFlight: Int
    let p50Milliseconds: Double
    let p99Milliseconds: Double

    enum CodingKeys: String, CodingKey {
        case second = "t", phase, target, sent, completed, errors, dropped, inFlight = "in_flight"
        case p50Milliseconds = "p50_ms", p99Milliseconds = "p99_ms"
    }
}

/// A phase as it ran.
struct PhaseRun: Sendable {
    let index: Int
    let phase: Phase
    /// Seconds from the run's start.
    let start: Double
    let end: Double
    /// Requests that came due (sent or dropped).
    let scheduled: Int
    var tally: PhaseTally
}

/// What the run hands to the reports.
struct RunRecord: Sendable {
    let startedAt: Date
    var phases: [PhaseRun]
    var timeline: [TimelinePoint]
    var wasInterrupted: Bool
}

/// What a run does at phase boundaries: apply and clear faults, wait on alerts.
struct PhaseHooks: Sendable {
    /// Called when phase `index` starts, before its first request is due.
    var phaseStarted: @Sendable (_ index: Int, _ phase: Phase, _ runSeconds: Double) async -> Void = { _, _, _ in }
    /// Asked while the phase runs: true ends it early.
    var shouldEndPhase: @Sendable (_ index: Int, _ phase: Phase) -> Bool = { _, _ in false }
}

/// The open-model engine: requests leave when the arrival schedule says they are due,
/// whatever happened to the earlier ones; a slow server makes latency grow, not the rate
/// fall. Past `maxInFlight` unanswered requests, new ones are dropped and counted.
struct LoadEngine: Sendable {
    let scenario: Scenario
    let settings: RunSettings
    let traffic: any TrafficSource
    let hooks: PhaseHooks
    let raw: RawRecordWriter?

    static let workerCount = 8

    func run(planner initialPlanner: RequestPlanner, stop: StopSignal) async -> RunRecord {
        let clock = ContinuousClock()
        let origin = clock.now
        let startedAt = Date()
        let slots = ConnectionSlots(count: settings.connections)
        let workers = (0..<min(Self.workerCount, max(settings.connections, 1))).map { _ in RecordingWorker() }
        let counters = EngineCounters(firstPhase: scenario.phases.first?.name ?? "")
        let timeoutMicros = UInt64(settings.timeout * 1_000_000)
        let settings = self.settings
        let traffic = self.traffic
        let raw = self.raw

        @Sendable func micros(_ instant: ContinuousClock.Instant) -> UInt64 {
            let elapsed = instant - origin
            return UInt64(max(0, elapsed.components.seconds)) * 1_000_000 + UInt64(max(0, elapsed.components.attoseconds / 1_000_000_000_000))
        }
        @Sendable func seconds(_ instant: ContinuousClock.Instant) -> Double { Double(micros(instant)) / 1_000_000 }

        // The live line and the timeline: one point per second of the run.
        let reporter = Task {
            var second = 1
            while !Task.isCancelled {
                try? await Task.sleep(until: origin + .seconds(second), tolerance: .milliseconds(5), clock: clock)
                if Task.isCancelled { break }
                var interval = IntervalTally()
                for worker in workers { interval.merge(worker.takeInterval()) }
                let completed = interval.results.values.reduce(0, +)
                let errors = interval.results.filter { $0.key.isError }.reduce(0) { $0 + $1.value }
                let point = TimelinePoint(
                    second: second, phase: counters.currentPhase.withLock { $0 },
                    target: counters.dueInInterval.exchange(0, ordering: .relaxed), sent: counters.sentInInterval.exchange(0, ordering: .relaxed),
                    completed: completed, errors: errors, dropped: counters.droppedInInterval.exchange(0, ordering: .relaxed),
                    inFlight: counters.inFlight.load(ordering: .relaxed),
                    p50Milliseconds: interval.latency.milliseconds(at: 50), p99Milliseconds: interval.latency.milliseconds(at: 99)
                )
                counters.timeline.withLock { $0.append(point) }
                if settings.printsLiveLine { LiveLine.print(point) }
                second += 1
            }
        }

        var planner = initialPlanner
        var phaseRuns: [(index: Int, start: Double, end: Double, scheduled: Int)] = []
        await withDiscardingTaskGroup { group in
            for (index, phase) in scenario.phases.enumerated() {
                if stop.isStopped { break }
                counters.currentPhase.withLock { $0 = phase.name }
                let phaseStart = clock.now
                await hooks.phaseStarted(index, phase, seconds(phaseStart))
                var scheduled = 0
                var endedEarly = false

                /// Sleeps until `deadline`; false when the run stops or the phase ends first.
                func wait(until deadline: ContinuousClock.Instant) async -> Bool {
                    while true {
                        if stop.isStopped || hooks.shouldEndPhase(index, phase) { return false }
                        let remaining = deadline - clock.now
                        if remaining <= .microseconds(200) { return true }
                        try? await Task.sleep(until: min(deadline, clock.now + .milliseconds(100)), tolerance: .microseconds(100), clock: clock)
                    }
                }

                let schedule = ArrivalSchedule(shape: phase.shape, duration: phase.duration, spacing: scenario.spacing, seed: settings.seed &+ UInt64(index))
                for offset in schedule {
                    // Every shard draws every request, so that each has the same plan, and
                    // sends its own.
                    let request = planner.next()
                    guard settings.shard.owns(request.sequence) else { continue }
                    let intended = phaseStart + .microseconds(Int64(offset * 1_000_000))
                    if intended > clock.now, !(await wait(until: intended)) { endedEarly = true; break }
                    scheduled += 1
                    counters.dueInInterval.add(1, ordering: .relaxed)
                    let intendedMicros = micros(intended)
                    if counters.inFlight.load(ordering: .relaxed) >= settings.maxInFlight {
                        counters.droppedInInterval.add(1, ordering: .relaxed)
                        let record = RequestRecord(phase: index, sequence: request.sequence, tenant: request.tenant, operation: request.operation,
                                                   intended: intendedMicros, sent: nil, completed: nil, status: nil, result: nil)
                        workers[request.sequence % workers.count].record(record)
                        raw?.write(record)
                        continue
                    }
                    counters.inFlight.add(1, ordering: .relaxed)
                    group.addTask {
                        let slot = await slots.acquire()
                        let sent = micros(clock.now)
                        counters.sentInInterval.add(1, ordering: .relaxed)
                        let executed = await traffic.execute(request)
                        var completed = micros(clock.now)
                        slots.release(slot)
                        if executed.result == .timeout { completed = sent + timeoutMicros }
                        let record = RequestRecord(phase: index, sequence: request.sequence, tenant: request.tenant, operation: executed.operation,
                                                   intended: intendedMicros, sent: sent, completed: completed, status: executed.status, result: executed.result)
                        workers[slot % workers.count].record(record)
                        raw?.write(record)
                        counters.inFlight.add(-1, ordering: .relaxed)
                    }
                }
                if !endedEarly { _ = await wait(until: phaseStart + .microseconds(Int64(phase.duration * 1_000_000))) }
                let phaseEnd = clock.now
                phaseRuns.append((index, seconds(phaseStart), seconds(phaseEnd), scheduled))
                raw?.writePhase(index: index, name: phase.name, start: seconds(phaseStart), end: seconds(phaseEnd), scheduled: scheduled)
            }
        }
        reporter.cancel()
        _ = await reporter.result

        var tallies: [Int: PhaseTally] = [:]
        for worker in workers {
            for (index, tally) in worker.phaseTallies() { tallies[index, default: PhaseTally()].merge(tally) }
        }
        let phases = phaseRuns.map { run in
            PhaseRun(index: run.index, phase: scenario.phases[run.index], start: run.start, end: run.end, scheduled: run.scheduled, tally: tallies[run.index] ?? PhaseTally())
        }
        return RunRecord(startedAt: startedAt, phases: phases, timeline: counters.timeline.withLock { $0 }, wasInterrupted: stop.isStopped)
    }
}

/// The line printed each second on standard error.
enum LiveLine {
    static func format(_ point: TimelinePoint) -> String {
        let errorPercent = point.completed > 0 ? Double(point.errors) / Double(point.completed) * 100 : 0
        let phase = point.phase.count >= 10 ? point.phase : point.phase.padding(toLength: 10, withPad: " ", startingAt: 0)
        return "[\(String(format: "%4ld", point.second))s] \(phase) " + String(format: "target %5ld/s  sent %5ld/s  done %5ld/s  err %5.1f%%  p50 %8.1fms  p99 %8.1fms  in-flight %4ld  dropped %ld",
                      point.target, point.sent, point.completed, errorPercent,
                      point.p50Milliseconds, point.p99Milliseconds, point.inFlight, point.dropped)
    }

    static func print(_ point: TimelinePoint) {
        FileHandle.standardError.write(Data((format(point) + "\n").utf8))
    }
}
