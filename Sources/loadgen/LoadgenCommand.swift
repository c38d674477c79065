import ArgumentParser
import Foundation

/// The exit codes; docs/loadgen.md lists them.
enum ExitStatus {
    static let passed: Int32 = 0
    static let thresholdsFailed: Int32 = 1
    static let badConfiguration: Int32 = 2
    static let targetUnreachable: Int32 = 3
    static let internalError: Int32 = 4
    static let interrupted: Int32 = 130
}

/// A run that could not start, with the exit code that says why.
struct LoadgenFailure: Error, CustomStringConvertible {
    let exitCode: Int32
    let message: String
    var description: String { message }

    static func badConfiguration(_ error: ConfigurationError) -> LoadgenFailure {
        LoadgenFailure(exitCode: ExitStatus.badConfiguration, message: "bad configuration: \(error)")
    }
}

@main
struct LoadgenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadgen",
        abstract: "Open-model multi-tenant load for CloudBill, with failure scenarios and honest latency.",
        discussion: "Exit codes: 0 pass, 1 thresholds failed, 2 bad configuration, 3 target unreachable, 4 internal error, 130 interrupted.",
        subcommands: [RunCommand.self, ListCommand.self, PlanCommand.self, ReportCommand.self, MergeCommand.self]
    )

    /// ArgumentParser's own `main`, with usage errors mapped to the bad-configuration code
    /// and a `LoadgenFailure` to its own code.
    static func main() async {
        let code = await runMain(Array(CommandLine.arguments.dropFirst()))
        Foundation.exit(code)
    }

    static func runMain(_ arguments: [String]) async -> Int32 {
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return ExitStatus.passed
        } catch let failure as LoadgenFailure {
            FileHandle.standardError.write(Data("loadgen: \(failure.message)\n".utf8))
            return failure.exitCode
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("loadgen: bad configuration: \(error)\n".utf8))
            return ExitStatus.badConfiguration
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            if code == .validationFailure { return ExitStatus.badConfiguration }
            return code.rawValue
        }
    }
}

/// Options that shape the scenario: `run` and `plan` share them.
struct ScenarioOptions: ParsableArguments {
    @Argument(help: "A built-in scenario (loadgen list) or a YAML file.")
    var scenario: String

    @Option(help: "Base rate in requests/s; scales every phase's rate (default: the scenario's).")
    var rate: Double?

    @Option(help: "Total duration (30s, 5m, 1m30s); stretches or shrinks every phase in proportion.")
    var duration: String?

    @Option(help: "Divide every phase's duration by this factor (≥ 1), for alert rules rendered at the same time scale (scripts/timescale.py).")
    var timeScale: Double = 1

    @Flag(help: "Poisson arrivals instead of evenly spaced ones.")
    var poisson = false

    @Option(name: .customLong("threshold"), help: "Pass/fail rule, repeatable, replaces the scenario's: p99<300ms, errors<1%, achieved>=99%, alert fired, PHASE:rule.")
    var thresholds: [String] = []

    /// The scenario with the options applied.
    func resolve() throws(ConfigurationError) -> Scenario {
        var resolved: Scenario
        let looksLikeFile = scenario.hasSuffix(".yaml") || scenario.hasSuffix(".yml") || scenario.contains("/")
        if looksLikeFile || FileManager.default.fileExists(atPath: scenario) {
            resolved = try ScenarioFile.load(path: scenario)
        } else if let builtin = try BuiltinScenarios.scenario(named: scenario) {
            resolved = builtin
        } else {
            throw ConfigurationError(field: "SCENARIO", message: "'\(scenario)' is neither a built-in scenario (\(BuiltinScenarios.names.joined(separator: ", "))) nor a YAML file")
        }
        if let rate {
            guard rate >= 0, rate.isFinite else { throw ConfigurationError(field: "--rate", message: "must be ≥ 0") }
            let factor = resolved.baseRate > 0 ? rate / resolved.baseRate : 0
            for index in resolved.phases.indices {
                resolved.phases[index].shape = Self.scale(resolved.phases[index].shape, by: factor, orSet: rate)
            }
            resolved.baseRate = rate
        }
        if let duration {
            guard let seconds = parseDuration(duration), seconds > 0 else {
                throw ConfigurationError(field: "--duration", message: "'\(duration)' is not a duration such as 30s or 5m")
            }
            resolved = resolved.scaled(toDuration: seconds)
        }
        guard timeScale >= 1, timeScale.isFinite else { throw ConfigurationError(field: "--time-scale", message: "must be a number ≥ 1") }
        if timeScale != 1 {
            for index in resolved.phases.indices { resolved.phases[index].duration /= timeScale }
        }
        if poisson { resolved.spacing = .poisson }
        if !thresholds.isEmpty {
            var parsed: [Threshold] = []
            for text in thresholds {
                do { parsed.append(try Threshold(parsing: text)) } catch { throw ConfigurationError(field: "--threshold", message: error.message) }
            }
            resolved.thresholds = parsed
        }
        return resolved
    }

    private static func scale(_ shape: RateShape, by factor: Double, orSet rate: Double) -> RateShape {
        switch shape {
        case .constant(let value): return .constant(factor > 0 ? value * factor : rate)
        case .ramp(let from, let to): return .ramp(from: from * factor, to: factor > 0 ? to * factor : rate)
        case .steps(let values): return .steps(values.map { factor > 0 ? $0 * factor : rate })
        }
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The built-in scenarios, one line each.")

    func run() throws {
        for entry in BuiltinScenarios.all {
            let scenario = try ScenarioFile.parse(entry.yaml, defaultName: entry.name)
            let alerts = scenario.expectedAlerts.isEmpty ? "" : "  [expects \(scenario.expectedAlerts.joined(separator: ", "))]"
            print("\(entry.name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(formatDuration(scenario.totalDuration).padding(toLength: 6, withPad: " ", startingAt: 0)) \(scenario.summary)\(alerts)")
        }
    }
}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Print a scenario's timeline of rates, faults and alert waits; sends nothing.")

    @OptionGroup var scenarioOptions: ScenarioOptions

    func run() throws {
        let scenario: Scenario
        do { scenario = try scenarioOptions.resolve() } catch { throw LoadgenFailure.badConfiguration(error) }
        print(Self.describe(scenario))
    }

    static func describe(_ scenario: Scenario) -> String {
        var lines = ["scenario \(scenario.name): \(scenario.summary)",
                     "base rate \(formatRate(scenario.baseRate))/s, \(scenario.spacing.rawValue) arrivals, mix \(scenario.mix), \(formatDuration(scenario.totalDuration)) at most", ""]
        var start = 0.0
        var total = 0.0
        for phase in scenario.phases {
            let expected = ArrivalSchedule(shape: phase.shape, duration: phase.duration).expectedCount
            total += expected
            var notes: [String] = []
            if phase.clearsFaults { notes.append("clear all faults") }
            notes += phase.inject.map { "inject \($0)" }
            if let until = phase.until { notes.append("ends early when \(until == .firing ? "the expected alerts fire" : "they resolve")") }
            lines.append("  +\(formatDuration(start).padding(toLength: 7, withPad: " ", startingAt: 0)) \(phase.name.padding(toLength: 10, withPad: " ", startingAt: 0)) "
                         + "\(formatDuration(phase.duration).padding(toLength: 6, withPad: " ", startingAt: 0)) \(phase.shape.description.padding(toLength: 22, withPad: " ", startingAt: 0)) "
                         + "\(String(Int(expected.rounded())).padding(toLength: 8, withPad: " ", startingAt: 0)) requests" + (notes.isEmpty ? "" : "  " + notes.joined(separator: "; ")))
            start += phase.duration
        }
        lines.append("")
        lines.append("  total \(Int(total.rounded())) requests over \(formatDuration(start))")
        if !scenario.expectedAlerts.isEmpty { lines.append("  expects alerts: \(scenario.expectedAlerts.joined(separator: ", "))") }
        if !scenario.thresholds.isEmpty { lines.append("  thresholds: \(scenario.thresholds.map(\.text).joined(separator: ", "))") }
        return lines.joined(separator: "\n")
    }
}

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report", abstract: "Rebuild the summary of a run from its raw NDJSON records.")

    @Argument(help: "The raw file a run wrote with --raw.")
    var raw: String

    @Option(help: "Write the versioned JSON summary here.")
    var summaryJSON: String?

    @Option(help: "Write the self-contained HTML report here.")
    var html: String?

    func run() async throws {
        let run: RawRun
        do { run = try RawRun.read(path: raw) } catch { throw LoadgenFailure.badConfiguration(error) }
        let summary = RunSummary(scenario: run.scenario, seed: run.seed, gatewayURL: run.gatewayURL, record: run.record,
                                 alerts: run.alerts, faults: run.faults, thresholds: run.scenario.thresholds)
        print(summary.text())
        if let summaryJSON { try summary.json().write(to: URL(fileURLWithPath: summaryJSON)) }
        if let html { try HTMLReport(summary: summary, phases: run.record.phases).write(to: html) }
        if summary.exitCode != 0 { throw ExitCode(summary.exitCode) }
    }
}
