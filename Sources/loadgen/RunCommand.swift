import ArgumentParser
import Foundation
import Synchronization

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run a scenario against the gateway and judge it by its thresholds.")

    @OptionGroup var scenarioOptions: ScenarioOptions

    @Option(help: "The gateway's base URL.")
    var gatewayURL = ProcessInfo.processInfo.environment["CLOUDBILL_GATEWAY_URL"] ?? "http://127.0.0.1:8080"

    @Option(help: "Prometheus, for the alerts a scenario expects.")
    var prometheusURL = ProcessInfo.processInfo.environment["CLOUDBILL_PROMETHEUS_URL"] ?? "http://127.0.0.1:9090"

    @Option(help: "X-Admin-Token for tenants and faults (env CLOUDBILL_ADMIN_TOKEN).")
    var adminToken = ProcessInfo.processInfo.environment["CLOUDBILL_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 } ?? "cloudbill-demo-admin-token"

    @Option(help: "Tenants to create; their weights follow Zipf's law.")
    var tenants = 10

    @Option(help: "Zipf exponent of the tenant weights.")
    var zipfExponent = 1.0

    @Option(help: "Seed of the arrival times, tenants and request mix.")
    var seed: UInt64 = 1

    @Option(help: "Connections to the gateway (requests beyond them wait for one).")
    var connections = 64

    @Option(help: "Unanswered requests beyond which new ones are dropped (and counted).")
    var maxInFlight = 2000

    @Option(help: "Request timeout (10s, 500ms).")
    var timeout = "10s"

    @Option(help: "Write the versioned JSON summary here.")
    var summaryJSON: String?

    @Option(help: "Write every request as NDJSON here (loadgen report reads it).")
    var raw: String?

    @Option(help: "Write the self-contained HTML report (charts over time, phases, table) here.")
    var html: String?

    @Option(help: "Webhook URL for tenants and webhook notifications (default: a sink loadgen serves on 127.0.0.1).")
    var webhookURL: String?

    @Option(help: "Reuse the tenants saved in this file (tenant_id TAB api_key a line) instead of creating new ones; when it does not exist, create --tenants and save them there. Runs sharing tenants should share --webhook-url.")
    var tenantsFile: String?

    @Option(help: "Keep the fault on this long after the expected alerts fire (30s, 1.5s), so that Alertmanager notifies before it clears.")
    var linger = "0s"

    @Option(help: "Append every payment the gateway acknowledged here (id TAB status), to check against the database afterwards.")
    var acknowledgedPayments: String?

    @Option(help: "scripts/stack, for faults that stop a component.")
    var stackScript = "scripts/stack"

    @Flag(help: "Apply no faults (traffic phases only).")
    var noFaults = false

    @Option(help: "Send only the i-th of N interleaved slices of the schedule (0/4 … 3/4): N processes with the same seed send the single-process run together; shard 0 alone applies the faults. loadgen merge joins their summaries.")
    var shard = "0/1"

    @Flag(help: "No live line each second.")
    var quiet = false

    func run() async throws {
        let summary = try await execute(stop: SignalTrap.install())
        print(summary.text())
        if summary.exitCode != 0 { throw ExitCode(summary.exitCode) }
    }

    /// The whole run; throws `LoadgenFailure` when it cannot start.
    func execute(stop: StopSignal) async throws -> RunSummary {
        let scenario: Scenario
        do { scenario = try scenarioOptions.resolve() } catch { throw LoadgenFailure.badConfiguration(error) }
        guard let timeoutSeconds = parseDuration(timeout), timeoutSeconds > 0 else {
            throw LoadgenFailure.badConfiguration(ConfigurationError(field: "--timeout", message: "'\(timeout)' is not a duration"))
        }
        guard let lingerSeconds = parseDuration(linger), lingerSeconds >= 0 else {
            throw LoadgenFailure.badConfiguration(ConfigurationError(field: "--linger", message: "'\(linger)' is not a duration"))
        }
        guard tenants >= 1 else { throw LoadgenFailure.badConfiguration(ConfigurationError(field: "--tenants", message: "must be ≥ 1")) }
        guard connections >= 1, maxInFlight >= 1 else {
            throw LoadgenFailure.badConfiguration(ConfigurationError(field: "--connections", message: "--connections and --max-in-flight must be ≥ 1"))
        }
        var settings = RunSettings()
        do { settings.shard = try Shard(parsing: shard) } catch { throw LoadgenFailure.badConfiguration(error) }
        settings.seed = seed
        settings.connections = connections
        settings.maxInFlight = maxInFlight
        settings.timeout = timeoutSeconds
        settings.printsLiveLine = !quiet
        settings.linger = lingerSeconds

        let transport = Transport(connections: connections, timeout: timeoutSeconds)
        let controlTransport = Transport(connections: 4, timeout: 30)
        do {
            let summary = try await execute(scenario: scenario, settings: settings, transport: transport, controlTransport: controlTransport, stop: stop)
            await transport.shutdown(); await controlTransport.shutdown()
            return summary
        } catch {
            await transport.shutdown(); await controlTransport.shutdown()
            throw error
        }
    }

    private func execute(scenario: Scenario, settings: RunSettings, transport: Transport, controlTransport: Transport, stop: StopSignal) async throws -> RunSummary {
        let gateway = gatewayURL.hasSuffix("/") ? String(gatewayURL.dropLast()) : gatewayURL

        // Traffic: checks that the target answers, then bootstraps tenants.
        let traffic: any TrafficSource
        let planner: RequestPlanner
        let runID = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        switch scenario.mix {
        case .ping(let path):
            do { _ = try await transport.send("GET", gateway + path) } catch where error.kind == .connect {
                throw LoadgenFailure(exitCode: ExitStatus.targetUnreachable, message: "\(gateway) is unreachable: \(error.detail)")
            } catch {}
            traffic = PingTraffic(transport: transport, url: gateway + path)
            planner = RequestPlanner(seed: seed, only: .ping)
        case .cloudbill:
            let sinkURL: String
            if let webhookURL { sinkURL = webhookURL } else {
                do { sinkURL = try WebhookSink().url } catch { throw LoadgenFailure(exitCode: ExitStatus.internalError, message: "\(error)") }
            }
            var journal: PaymentJournal?
            if let acknowledgedPayments {
                do { journal = try PaymentJournal(path: acknowledgedPayments) } catch { throw LoadgenFailure(exitCode: ExitStatus.badConfiguration, message: "\(error)") }
            }
            var saved: [(tenantID: String, apiKey: String)] = []
            if let tenantsFile, let text = try? String(contentsOfFile: tenantsFile, encoding: .utf8) {
                for line in text.split(separator: "\n") {
                    let fields = line.split(separator: "\t").map(String.init)
                    guard fields.count == 2 else {
                        throw LoadgenFailure.badConfiguration(ConfigurationError(field: "--tenants-file", message: "\(tenantsFile): a line is not tenant_id TAB api_key"))
                    }
                    saved.append((fields[0], fields[1]))
                }
            }
            do {
                if saved.isEmpty {
                    let created = try await CloudBillTraffic.bootstrap(count: tenants, transport: controlTransport, sendingWith: transport, gatewayURL: gateway,
                                                                       adminToken: adminToken, webhookURL: sinkURL, runID: runID, journal: journal,
                                                                       timeScale: scenarioOptions.timeScale)
                    if let tenantsFile {
                        do { try created.savedTenants.write(toFile: tenantsFile, atomically: true, encoding: .utf8) } catch {
                            throw LoadgenFailure(exitCode: ExitStatus.badConfiguration, message: "cannot write \(tenantsFile): \(error)")
                        }
                    }
                    traffic = created
                } else {
                    traffic = try await CloudBillTraffic.resume(saved: saved, transport: controlTransport, sendingWith: transport, gatewayURL: gateway,
                                                                webhookURL: sinkURL, runID: runID, journal: journal,
                                                                timeScale: scenarioOptions.timeScale)
                }
            } catch let failure as LoadgenFailure {
                throw failure
            } catch let error as BootstrapError {
                switch error {
                case .unreachable: throw LoadgenFailure(exitCode: ExitStatus.targetUnreachable, message: error.description)
                case .rejected: throw LoadgenFailure(exitCode: ExitStatus.badConfiguration, message: error.description + " (check --admin-token)")
                }
            } catch {
                throw LoadgenFailure(exitCode: ExitStatus.internalError, message: "\(error)")
            }
            // Saved tenants may be more or fewer than --tenants.
            let tenantCount = (traffic as? CloudBillTraffic)?.tenants.count ?? tenants
            planner = RequestPlanner(seed: seed, tenants: TenantWeights(count: tenantCount, exponent: zipfExponent, seed: seed))
        }

        let rawWriter: RawRecordWriter?
        if let raw {
            do { rawWriter = try RawRecordWriter(path: raw) } catch { throw LoadgenFailure(exitCode: ExitStatus.badConfiguration, message: "\(error)") }
            rawWriter?.writeHeader(scenario: scenario, seed: seed, gatewayURL: gateway, settings: settings)
        } else {
            rawWriter = nil
        }

        let origin = ContinuousClock.now
        let injector = FaultInjector(gatewayURL: gateway, adminToken: adminToken, stackScript: stackScript, transport: controlTransport)
        let watcher = scenario.expectedAlerts.isEmpty ? nil
            : AlertWatcher(prometheusURL: prometheusURL.hasSuffix("/") ? String(prometheusURL.dropLast()) : prometheusURL,
                           expected: scenario.expectedAlerts, transport: controlTransport, origin: origin, linger: settings.linger,
                           services: scenario.watchedServices)
        if let watcher, !(await watcher.poll()) {
            FileHandle.standardError.write(Data("loadgen: Prometheus at \(prometheusURL) does not answer; alerts will not be watched\n".utf8))
        }
        // At a compressed time scale (`--time-scale`) alerts change state sooner: poll sooner.
        let pollSeconds = max(0.2, 5 / scenarioOptions.timeScale)
        let watching = watcher.map { watcher in Task { await watcher.watch(every: pollSeconds) } }
        // Faults happen once, from shard 0; the other shards follow the same phases.
        let faultsHappen = !noFaults
        let appliesFaults = faultsHappen && settings.shard.appliesFaults
        let faultSeen = Atomic<Bool>(false)
        let hooks = PhaseHooks(
            phaseStarted: { _, phase, seconds in
                guard faultsHappen else { return }
                // The first fault: from now on only alerts that become active count.
                if !phase.inject.isEmpty, !faultSeen.exchange(true, ordering: .relaxed) { watcher?.faultStarted() }
                guard appliesFaults else { return }
                if phase.clearsFaults {
                    for event in await injector.clearAll(at: seconds) { Self.announce(event); rawWriter?.writeEvent(event) }
                }
                for action in phase.inject {
                    let event = await injector.apply(action, at: seconds)
                    Self.announce(event)
                    rawWriter?.writeEvent(event)
                }
            },
            shouldEndPhase: { _, phase in
                guard let watcher, let until = phase.until else { return false }
                return until == .firing ? watcher.allFiring : watcher.allResolved
            }
        )
        let engine = LoadEngine(scenario: scenario, settings: settings, traffic: traffic, hooks: hooks, raw: rawWriter)
        let record = await engine.run(planner: planner, stop: stop)
        (traffic as? CloudBillTraffic)?.journal?.close()
        // Whatever happened, no fault outlives the run.
        if injector.hasApplied {
            let seconds = Double((ContinuousClock.now - origin).components.seconds)
            for event in await injector.clearAll(at: seconds) { Self.announce(event); rawWriter?.writeEvent(event) }
        }
        watching?.cancel()
        if let watcher { await watcher.poll() }
        let alerts = watcher?.snapshot() ?? []
        rawWriter?.writeAlerts(alerts)
        rawWriter?.finish(interrupted: record.wasInterrupted)
        var summary = RunSummary(scenario: scenario, seed: seed, gatewayURL: gateway, record: record, alerts: alerts, faults: injector.events, thresholds: scenario.thresholds)
        summary.shard = settings.shard.description
        if let summaryJSON {
            do { try summary.json().write(to: URL(fileURLWithPath: summaryJSON)) } catch {
                FileHandle.standardError.write(Data("loadgen: cannot write \(summaryJSON): \(error)\n".utf8))
            }
        }
        if let html {
            do { try HTMLReport(summary: summary, phases: record.phases).write(to: html) } catch {
                FileHandle.standardError.write(Data("loadgen: cannot write \(html): \(error)\n".utf8))
            }
        }
        return summary
    }

    static func announce(_ event: FaultEvent) {
        let line = String(format: "[%6.1fs] ", event.at) + (event.succeeded ? "" : "FAILED ") + event.action + (event.succeeded ? "" : ": \(event.detail)")
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// SIGINT and SIGTERM: the first stops the run (in-flight requests finish, faults are
/// cleared, reports written, exit 130); a second exits at once.
enum SignalTrap {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []  // written once, on the main task, before any signal

    static func install() -> StopSignal {
        let stop = StopSignal()
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if stop.isStopped { exit(ExitStatus.interrupted) }
                FileHandle.standardError.write(Data("loadgen: interrupted; waiting for in-flight requests, clearing faults\n".utf8))
                stop.stop()
            }
            source.resume()
            sources.append(source)
        }
        return stop
    }
}
