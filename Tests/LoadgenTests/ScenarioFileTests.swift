import Foundation
import Testing
@testable import loadgen

@Suite struct ScenarioFileTests {
    @Test func everyBuiltInScenarioParses() throws {
        for name in BuiltinScenarios.names {
            let scenario = try #require(try BuiltinScenarios.scenario(named: name))
            #expect(!scenario.phases.isEmpty)
        }
        let failures = BuiltinScenarios.names.compactMap { try? BuiltinScenarios.scenario(named: $0) }.filter { !$0.expectedAlerts.isEmpty }
        #expect(failures.count >= 18)
        for scenario in failures where !scenario.name.hasPrefix("traffic-") {
            // A fault may be held on after its alerts fired (sustain), before the clear.
            #expect(scenario.phases.map(\.name).filter { $0 != "sustain" } == ["baseline", "inject", "hold", "clear", "recover"])
        }
        let sustained = try #require(try BuiltinScenarios.scenario(named: "database-query-errors"))
        #expect(sustained.phases.map(\.name) == ["baseline", "inject", "hold", "sustain", "clear", "recover"])
        #expect(sustained.phases[2].until == .firing && sustained.phases[3].until == nil)
    }

    @Test func trafficScenariosSpikeOnTopAndDropBelowOneFifthUntilTheirAlertFires() throws {
        let spike = try #require(try BuiltinScenarios.scenario(named: "traffic-spike"))
        #expect(spike.expectedAlerts == ["TrafficSpike"])
        #expect(spike.phases.map(\.shape) == [.constant(0), .constant(2.5 * spike.baseRate), .constant(0)])
        #expect(spike.phases[1].until == .firing && spike.phases[2].until == .resolved)
        let drop = try #require(try BuiltinScenarios.scenario(named: "traffic-drop"))
        #expect(drop.expectedAlerts == ["TrafficDrop"])
        guard case .constant(let low) = drop.phases[1].shape else { Issue.record("drop is not constant"); return }
        #expect(low < 0.2 * drop.baseRate && drop.phases[1].until == .firing)
        #expect(drop.phases[2].shape == .constant(drop.baseRate) && drop.phases[2].until == .resolved)
    }

    @Test func anExpectedAlertCountsOnlyFromTheServiceTheFaultActsOn() throws {
        #expect(try BuiltinScenarios.scenario(named: "cpu-high")?.watchedServices == ["billing-service"])
        #expect(try BuiltinScenarios.scenario(named: "error-burst")?.watchedServices == ["api-gateway"])
        #expect(try BuiltinScenarios.scenario(named: "service-down")?.watchedServices == ["notification-service"])
        #expect(try BuiltinScenarios.scenario(named: "database-down")?.watchedServices == nil)
        #expect(try BuiltinScenarios.scenario(named: "traffic-spike")?.watchedServices == nil)
    }

    @Test func timeScaleDividesEveryPhaseDurationAndKeepsTheRates() throws {
        let real = try ScenarioOptions.parse(["error-burst"]).resolve()
        let fast = try ScenarioOptions.parse(["error-burst", "--time-scale", "30"]).resolve()
        #expect(fast.phases.count == real.phases.count)
        for (original, scaled) in zip(real.phases, fast.phases) {
            #expect(abs(scaled.duration - original.duration / 30) < 1e-9)
            #expect(scaled.shape == original.shape && scaled.inject == original.inject && scaled.until == original.until)
        }
        #expect(throws: ConfigurationError.self) { try ScenarioOptions.parse(["error-burst", "--time-scale", "0.5"]).resolve() }
        let options = try ScenarioOptions.parse(["error-burst", "--time-scale", "0"])
        do { _ = try options.resolve() } catch { #expect(error.field == "--time-scale") }
    }

    @Test func spikeDoublesAndDropFallsUnderTwentyPercent() throws {
        let spike = try #require(try BuiltinScenarios.scenario(named: "spike"))
        #expect(spike.phases[1].shape == .constant(2 * spike.baseRate))
        let drop = try #require(try BuiltinScenarios.scenario(named: "drop"))
        guard case .constant(let rate) = drop.phases[1].shape else { Issue.record("drop is not constant"); return }
        #expect(rate < 0.2 * drop.baseRate)
    }

    @Test func aMistakeNamesTheFieldThatIsWrong() {
        let yaml = """
        name: broken
        phases:
          - {name: warmup, duration: 10s}
          - {name: main, duration: ten seconds}
        """
        #expect(throws: ConfigurationError.self) { try ScenarioFile.parse(yaml) }
        do {
            _ = try ScenarioFile.parse(yaml)
        } catch {
            #expect(error.field == "phases[1].duration")
        }
        #expect(throws: ConfigurationError(field: "phases[0].rat", message: "unknown field (expected one of clear, duration, inject, name, ramp, rate, steps, until)")) {
            try ScenarioFile.parse("phases: [{duration: 1s, rat: 5}]")
        }
        #expect((try? ScenarioFile.parse("phases: [{duration: 1s, inject: [{service: billing, fault: teleport}]}]")) == nil)
    }

    @Test func thresholdsParse() throws {
        let p99 = try Threshold(parsing: "p99<300ms")
        #expect(p99.metric == .latencyPercentile(99) && p99.limit == 300 && p99.holds(299) && !p99.holds(300))
        let p999 = try Threshold(parsing: "p99.9 <= 1s")
        #expect(p999.metric == .latencyPercentile(99.9) && p999.limit == 1000)
        let errors = try Threshold(parsing: "errors<1%")
        #expect(errors.metric == .errorRatio && errors.limit == 0.01)
        let achieved = try Threshold(parsing: "hold:achieved>=99%")
        #expect(achieved.phase == "hold" && achieved.metric == .achievedRatio && achieved.holds(0.99))
        #expect((try? Threshold(parsing: "speed>3")) == nil)
    }

    @Test func aBadScenarioFileExitsWithTheBadConfigurationCodeNamingTheField() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loadgen-bad-\(UInt32.random(in: 0...UInt32.max)).yaml").path
        try "phases:\n  - {duration: 5s, rate: fast}\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(await LoadgenCommand.runMain(["run", path, "--quiet"]) == ExitStatus.badConfiguration)

        // The same through the real binary, with its message.
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("loadgen")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build loadgen first: \(binary.path)")
        let process = Process()
        process.executableURL = binary
        process.arguments = ["run", path]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == ExitStatus.badConfiguration)
        #expect(message.contains("phases[0].rate"))
    }

    @Test func anUnknownScenarioIsABadConfiguration() async {
        #expect(await LoadgenCommand.runMain(["plan", "no-such-scenario"]) == ExitStatus.badConfiguration)
        #expect(await LoadgenCommand.runMain(["run", "steady", "--rate", "-3"]) == ExitStatus.badConfiguration)
    }
}
