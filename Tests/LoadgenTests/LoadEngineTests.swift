import Foundation
import Testing
@testable import loadgen

/// Real-time runs against a stub server: serialized, so that they do not share the two cores.
@Suite(.serialized) struct LoadEngineTests {
    static func pingScenario(path: String, phases: [Phase]) -> Scenario {
        Scenario(name: "test", summary: "", baseRate: 100, spacing: .uniform, mix: .ping(path: path), phases: phases, expectedAlerts: [], thresholds: [])
    }

    static func run(_ scenario: Scenario, url: String, connections: Int = 16, maxInFlight: Int = 2000, timeout: Double = 10, raw: RawRecordWriter? = nil) async -> RunRecord {
        var settings = RunSettings()
        settings.connections = connections
        settings.maxInFlight = maxInFlight
        settings.timeout = timeout
        settings.printsLiveLine = false
        let transport = Transport(connections: connections, timeout: timeout)
        guard case .ping(let path) = scenario.mix else { fatalError("ping scenarios only") }
        let engine = LoadEngine(scenario: scenario, settings: settings, traffic: PingTraffic(transport: transport, url: url + path), hooks: PhaseHooks(), raw: raw)
        let record = await engine.run(planner: RequestPlanner(seed: 1, only: .ping), stop: StopSignal())
        await transport.shutdown()
        return record
    }

    /// The 60 s figure (6,000 ±1%) is proven on the computed schedule in
    /// ArrivalScheduleTests; this run proves the engine sends what the schedule says in real time.
    @Test func hundredPerSecondForFiveSecondsSendsFiveHundred() async throws {
        let stub = StubServer()
        let record = try await stub.serve { url in
            await Self.run(Self.pingScenario(path: "/ping", phases: [Phase(name: "steady", duration: 5, shape: .constant(100))]), url: url)
        }
        let phase = try #require(record.phases.first)
        #expect(phase.scheduled == 500)
        #expect((495...505).contains(phase.tally.sent))
        #expect((495...505).contains(stub.received.load(ordering: .relaxed)))
        #expect(phase.tally.results[.success] == phase.tally.sent)
        #expect(abs(phase.end - phase.start - 5) < 0.5, "phase lasted \(phase.end - phase.start) s")
        #expect(record.timeline.count >= 4)
    }

    @Test func rampFromZeroToHundredOverTenSecondsSendsFiveHundred() async throws {
        let stub = StubServer()
        let record = try await stub.serve { url in
            await Self.run(Self.pingScenario(path: "/ping", phases: [Phase(name: "ramp", duration: 10, shape: .ramp(from: 0, to: 100))]), url: url)
        }
        let phase = try #require(record.phases.first)
        #expect((495...505).contains(phase.tally.sent))
        #expect((495...505).contains(stub.received.load(ordering: .relaxed)))
        // The rate grows: the last second sends far more than the first.
        let perSecond = record.timeline.map(\.sent)
        #expect(perSecond.count >= 9 && perSecond[0] < perSecond[8])
    }

    /// One connection, 40/s for 5 s; request 40 stalls 1 s. The ~40 requests due during the
    /// stall wait for the connection: their latency (from the intended time) shows it, their
    /// service time (from when they were sent) does not.
    @Test func aStallShowsInLatencyFromTheIntendedTimeButNotInServiceTime() async throws {
        let stub = StubServer(stallRequest: 40, stall: .seconds(1))
        let record = try await stub.serve { url in
            await Self.run(Self.pingScenario(path: "/stall", phases: [Phase(name: "steady", duration: 5, shape: .constant(40))]), url: url, connections: 1)
        }
        let tally = try #require(record.phases.first?.tally)
        #expect(tally.sent == 200)
        #expect(tally.latency.milliseconds(at: 99) >= 900)
        #expect(tally.latency.milliseconds(at: 90) >= 250)
        #expect(tally.serviceTime.milliseconds(at: 99) < 100)
        #expect(Double(tally.serviceTime.max) / 1000 >= 1000)
        #expect(tally.sendLag.milliseconds(at: 99) >= 900)
    }

    @Test func requestsBeyondTheInFlightCapAreDroppedAndCounted() async throws {
        let stub = StubServer(stall: .seconds(2))
        let record = try await stub.serve { url in
            await Self.run(Self.pingScenario(path: "/slow", phases: [Phase(name: "burst", duration: 1, shape: .constant(50))]), url: url, maxInFlight: 10)
        }
        let phase = try #require(record.phases.first)
        #expect(phase.scheduled == 50)
        #expect(phase.tally.sent == 10)
        #expect(phase.tally.dropped == 40)
    }

    @Test func timeoutsAreRecordedAtTheTimeout() async throws {
        let stub = StubServer(stall: .seconds(3))
        let record = try await stub.serve { url in
            await Self.run(Self.pingScenario(path: "/slow", phases: [Phase(name: "slow", duration: 1, shape: .constant(5))]), url: url, timeout: 0.5)
        }
        let tally = try #require(record.phases.first?.tally)
        #expect(tally.results[.timeout] == 5)
        #expect(abs(tally.serviceTime.milliseconds(at: 50) - 500) < 5)
    }

    @Test func reportRebuildsTheSummaryFromTheRawRecords() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loadgen-raw-\(UInt32.random(in: 0...UInt32.max)).ndjson").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let scenario = Self.pingScenario(path: "/ping", phases: [Phase(name: "a", duration: 1, shape: .constant(50)), Phase(name: "b", duration: 1, shape: .constant(100))])
        let writer = try RawRecordWriter(path: path)
        writer.writeHeader(scenario: scenario, seed: 1, gatewayURL: "stub", settings: RunSettings())
        let stub = StubServer()
        let record = try await stub.serve { url in await Self.run(scenario, url: url, raw: writer) }
        writer.finish(interrupted: false)
        let live = RunSummary(scenario: scenario, seed: 1, gatewayURL: "stub", record: record, alerts: [], faults: [], thresholds: [])
        let raw = try RawRun.read(path: path)
        let rebuilt = RunSummary(scenario: raw.scenario, seed: raw.seed, gatewayURL: raw.gatewayURL, record: raw.record, alerts: [], faults: [], thresholds: [])
        #expect(rebuilt.phases == live.phases)
        #expect(rebuilt.total.sent == 150)
    }

    @Test func anUnreachableGatewayExitsWithItsOwnCode() async throws {
        let code = await LoadgenCommand.runMain(["run", "steady", "--gateway-url", "http://127.0.0.1:9", "--duration", "1s", "--quiet"])
        #expect(code == ExitStatus.targetUnreachable)
    }

    @Test func thresholdsDecideTheExitCode() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loadgen-thresholds-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let stub = StubServer(stall: .milliseconds(50))
        try await stub.serve { url in
            let yaml = "mix: {ping: /slow}\nphases: [{duration: 1s, rate: 20}]\n"
            try yaml.write(to: dir.appendingPathComponent("slow.yaml"), atomically: true, encoding: .utf8)
            let file = dir.appendingPathComponent("slow.yaml").path
            let summary = dir.appendingPathComponent("summary.json").path
            let passing = await LoadgenCommand.runMain(["run", file, "--gateway-url", url, "--quiet", "--threshold", "p99<2s", "--threshold", "errors<1%", "--summary-json", summary])
            #expect(passing == ExitStatus.passed)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: summary))) as? [String: Any])
            #expect(json["schema"] as? String == RunSummary.currentSchema)
            let failing = await LoadgenCommand.runMain(["run", file, "--gateway-url", url, "--quiet", "--threshold", "p99<10ms"])
            #expect(failing == ExitStatus.thresholdsFailed)
        }
    }
}
