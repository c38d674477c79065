import Foundation
import Synchronization
import Testing
@testable import loadgen

/// `--shard i/N` and `loadgen merge`: shards of one seeded run send the single-process run
/// between them, their summaries merge into the figures of one process, faults come from
/// shard 0 alone.
@Suite(.serialized) struct ShardTests {
    /// Answers every request at once and remembers what it was asked.
    final class RecordingTraffic: TrafficSource {
        let requests = Mutex<[PlannedRequest]>([])
        func execute(_ request: PlannedRequest) async -> ExecutedRequest {
            requests.withLock { $0.append(request) }
            return ExecutedRequest(operation: request.operation, status: 200, result: .success)
        }
    }

    static let scenario = Scenario(
        name: "shards", summary: "", baseRate: 100, spacing: .poisson, mix: .ping(path: "/ping"),
        phases: [Phase(name: "a", duration: 0.6, shape: .constant(300)), Phase(name: "b", duration: 0.6, shape: .ramp(from: 100, to: 500))],
        expectedAlerts: [], thresholds: []
    )

    static func run(shard: Shard) async -> (requests: [PlannedRequest], record: RunRecord) {
        var settings = RunSettings()
        settings.seed = 42
        settings.printsLiveLine = false
        settings.shard = shard
        let traffic = RecordingTraffic()
        let engine = LoadEngine(scenario: scenario, settings: settings, traffic: traffic, hooks: PhaseHooks(), raw: nil)
        let record = await engine.run(planner: RequestPlanner(seed: 42, tenants: TenantWeights(count: 7, seed: 42)), stop: StopSignal())
        return (traffic.requests.withLock { $0 }.sorted { $0.sequence < $1.sequence }, record)
    }

    @Test func fourShardsSendTogetherExactlyTheSingleProcessRequests() async throws {
        let whole = await Self.run(shard: .whole)
        #expect(whole.requests.count > 300)
        var union: [PlannedRequest] = []
        var scheduled = 0
        for index in 0..<4 {
            let shard = await Self.run(shard: Shard(index: index, count: 4))
            #expect(shard.requests.allSatisfy { $0.sequence % 4 == index }, "shard \(index) sent only its own slice")
            union += shard.requests
            scheduled += shard.record.phases.reduce(0) { $0 + $1.scheduled }
        }
        // Request for request: the same sequence numbers, tenants, operations and details.
        #expect(union.sorted { $0.sequence < $1.sequence } == whole.requests)
        #expect(scheduled == whole.record.phases.reduce(0) { $0 + $1.scheduled })
    }

    /// Latencies of one seeded run: recorded once whole, and split among four shards.
    static func records(count: Int) -> [RequestRecord] {
        var generator = SeededGenerator(seed: 9)
        return (0..<count).map { sequence in
            let intended = UInt64(sequence) * 1_000
            let lag = UInt64(generator.exponential() * 300)
            let service = UInt64(generator.exponential() * 20_000) + 200
            let failed = generator.unit() < 0.02
            return RequestRecord(phase: sequence < count / 2 ? 0 : 1, sequence: sequence, tenant: sequence % 7, operation: .ping,
                                 intended: intended, sent: intended + lag, completed: intended + lag + service,
                                 status: failed ? 503 : 200, result: failed ? .serverError : .success)
        }
    }

    static func summary(of records: [RequestRecord], shard: Shard) -> RunSummary {
        var tallies = [PhaseTally(), PhaseTally()]
        for record in records where shard.owns(record.sequence) { tallies[record.phase].record(record) }
        let phases = tallies.enumerated().map { index, tally in
            PhaseRun(index: index, phase: scenario.phases[index], start: Double(index) * 0.6, end: Double(index + 1) * 0.6,
                     scheduled: tally.sent + tally.dropped, tally: tally)
        }
        var summary = RunSummary(scenario: scenario, seed: 42, gatewayURL: "stub",
                                 record: RunRecord(startedAt: Date(timeIntervalSince1970: 1_796_600_000), phases: phases, timeline: [], wasInterrupted: false),
                                 alerts: [], faults: [], thresholds: [])
        summary.shard = shard.description
        return summary
    }

    @Test func mergedShardSummariesHaveThePercentilesOfOneProcess() async throws {
        let records = Self.records(count: 20_000)
        let whole = Self.summary(of: records, shard: .whole)
        // Through JSON, as `loadgen merge` reads the files the shards wrote.
        let shards = try (0..<4).reversed().map { index in
            try JSONDecoder().decode(RunSummary.self, from: Self.summary(of: records, shard: Shard(index: index, count: 4)).json())
        }
        let merged = try ShardMerge.merge(shards).summary
        for (mergedPhase, wholePhase) in zip(merged.phases + [merged.total], whole.phases + [whole.total]) {
            #expect(mergedPhase.latency == wholePhase.latency, "latency of \(wholePhase.name)")
            #expect(mergedPhase.serviceTime == wholePhase.serviceTime)
            #expect(mergedPhase.sendLag == wholePhase.sendLag)
            #expect(mergedPhase.sent == wholePhase.sent && mergedPhase.errors == wholePhase.errors && mergedPhase.results == wholePhase.results)
        }
        #expect(merged.total.latency.p99 > merged.total.latency.p50 && merged.total.latency.max > 0)
        #expect(merged.shards?.map(\.shard) == ["0/4", "1/4", "2/4", "3/4"])
        #expect(merged.shards?.map(\.sent).reduce(0, +) == whole.total.sent)
        #expect(HTMLReport(summary: merged, phases: []).render().contains("shard 2/4"))
    }

    @Test func mergeRefusesAnIncompleteOrMixedSetOfShards() async throws {
        let records = Self.records(count: 1_000)
        let two = (0..<2).map { Self.summary(of: records, shard: Shard(index: $0, count: 4)) }
        #expect(throws: ShardMerge.Failure.self) { try ShardMerge.merge(two) }
        var other = Self.summary(of: records, shard: Shard(index: 1, count: 2))
        other.definition?.name = "another"
        #expect(throws: ShardMerge.Failure.self) { try ShardMerge.merge([Self.summary(of: records, shard: Shard(index: 0, count: 2)), other]) }
    }

    @Test func shardsParseAndOnlyShardZeroAppliesFaults() throws {
        #expect(try Shard(parsing: "0/1") == .whole)
        #expect(try Shard(parsing: "3/4") == Shard(index: 3, count: 4))
        for bad in ["4/4", "-1/4", "1/0", "1", "a/b", "1/2/3"] {
            #expect(throws: ConfigurationError.self) { try Shard(parsing: bad) }
        }
        #expect(Shard(index: 0, count: 3).appliesFaults && !Shard(index: 1, count: 3).appliesFaults)
    }

    /// The faults of a scenario happen once: shard 0 runs the stack command, shard 1 only
    /// follows the phases. (A `stop` fault, through a stand-in for scripts/stack that logs.)
    @Test func onlyShardZeroInjectsTheScenariosFaults() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loadgen-shards-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let stack = dir.appendingPathComponent("stack").path
        try "#!/bin/sh\necho \"$SHARD $*\" >> \(dir.path)/stack.log\n".write(toFile: stack, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: stack)
        let scenario = dir.appendingPathComponent("fault.yaml").path
        try """
        mix: {ping: /ping}
        phases:
          - {name: before, duration: 0.3s, rate: 20}
          - {name: fault, duration: 0.3s, rate: 20, inject: [{stop: billing}]}
          - {name: after, duration: 0.3s, rate: 20, clear: true}
        """.write(toFile: scenario, atomically: true, encoding: .utf8)
        let stub = StubServer()
        try await stub.serve { url in
            for shard in ["0/2", "1/2"] {
                setenv("SHARD", shard, 1)
                let code = await LoadgenCommand.runMain(["run", scenario, "--gateway-url", url, "--quiet", "--shard", shard, "--stack-script", stack])
                #expect(code == ExitStatus.passed)
            }
            unsetenv("SHARD")
        }
        let log = (try? String(contentsOfFile: dir.appendingPathComponent("stack.log").path, encoding: .utf8)) ?? ""
        #expect(log.split(separator: "\n").map(String.init) == ["0/2 stop billing", "0/2 start billing"], "stack calls: \(log)")
        #expect(stub.received.load(ordering: .relaxed) > 0)
    }
}
