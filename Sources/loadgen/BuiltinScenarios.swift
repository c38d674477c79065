/// The scenarios `loadgen list` names, written in the same YAML a user would write.
enum BuiltinScenarios {
    static let steadyThresholds = #"thresholds: ["p99<300ms", "errors<1%", "achieved>=99%"]"#

    /// baseline → inject → hold (until the alert fires) → clear → recover (until it resolves).
    /// `hold` and `recover` are upper bounds (the phases end as soon as the alerts fire or
    /// resolve): at least the rule's `for` plus its longest window, with room to spare.
    /// `sustain`: the fault stays on that long after its alerts fired, before the clear.
    static func failure(
        _ name: String, _ description: String, inject: String, alerts: [String], hold: String = "15m", recover: String = "15m",
        sustain: String? = nil, rate: Int = 50
    ) -> (String, String) {
        let sustained = sustain.map { "\n  - {name: sustain, duration: \($0)}" } ?? ""
        let yaml = """
        name: \(name)
        description: \(description)
        rate: \(rate)
        expect_alerts: [\(alerts.joined(separator: ", "))]
        thresholds: ["alert fired", "achieved>=99%"]
        phases:
          - {name: baseline, duration: 1m}
          - {name: inject, duration: 10s, inject: [\(inject)]}
          - {name: hold, duration: \(hold), until: alerts_firing}\(sustained)
          - {name: clear, duration: 10s, clear: true}
          - {name: recover, duration: \(recover), until: alerts_resolved}
        """
        return (name, yaml)
    }

    static let all: [(name: String, yaml: String)] = [
        ("steady", """
        name: steady
        description: Constant traffic at the base rate for 60 s.
        rate: 100
        \(steadyThresholds)
        phases:
          - {name: steady, duration: 60s}
        """),
        ("spike", """
        name: spike
        description: Baseline, a sudden 2x spike, then back to baseline.
        rate: 100
        thresholds: ["errors<1%", "achieved>=99%"]
        phases:
          - {name: baseline, duration: 30s}
          - {name: spike, duration: 30s, rate: 2x}
          - {name: recover, duration: 30s}
        """),
        ("drop", """
        name: drop
        description: Baseline, traffic drops to 15% of it, then back.
        rate: 100
        thresholds: ["errors<1%", "achieved>=99%"]
        phases:
          - {name: baseline, duration: 30s}
          - {name: drop, duration: 30s, rate: 0.15x}
          - {name: recover, duration: 30s}
        """),
        ("ramp", """
        name: ramp
        description: From zero to the base rate over 60 s, then 60 s at it.
        rate: 100
        \(steadyThresholds)
        phases:
          - {name: ramp, duration: 60s, ramp: {from: 0, to: 1x}}
          - {name: hold, duration: 60s}
        """),
        ("steps", """
        name: steps
        description: Four equal steps, 0.5x to 2x of the base rate, 30 s each.
        rate: 100
        thresholds: ["errors<1%", "achieved>=99%"]
        phases:
          - {name: steps, duration: 2m, steps: [0.5x, 1x, 1.5x, 2x]}
        """),
        failure("error-burst", "The gateway answers 10% of requests with 500 until HighErrorRate fires.",
                inject: "{service: gateway, fault: http_errors, rate: 0.1, status: 500}", alerts: ["HighErrorRate"]),
        failure("critical-error-rate", "The gateway answers 30% of requests with 503 until CriticalErrorRate fires.",
                inject: "{service: gateway, fault: http_errors, rate: 0.3, status: 503}", alerts: ["CriticalErrorRate", "HighErrorRate"]),
        failure("latency-p95", "Billing adds 3 s to every request until HighLatencyP95 fires.",
                inject: "{service: billing, fault: latency, delay_ms: 3000, rate: 1.0}", alerts: ["HighLatencyP95"]),
        failure("latency-p99", "Billing adds 6 s to one request in ten until CriticalLatencyP99 fires.",
                inject: "{service: billing, fault: latency, delay_ms: 6000, rate: 0.1}", alerts: ["CriticalLatencyP99"]),
        failure("slow-database", "Every billing query takes 1.5 s longer until SlowDatabaseQueries fires.",
                inject: "{service: billing, fault: db_slow, sleep_ms: 1500}", alerts: ["SlowDatabaseQueries"]),
        failure("pool-exhaustion", "Billing's database pool shrinks to 2 connections and every query takes 200 ms longer, until DatabasePoolExhaustion fires.",
                inject: "{service: billing, fault: db_pool_limit, max_connections: 2}, {service: billing, fault: db_slow, sleep_ms: 200}",
                alerts: ["DatabasePoolExhaustion", "DatabasePoolWaitingRequests"]),
        failure("database-query-errors", "PostgreSQL cancels one billing statement in ten (57014) - each first sleeps 1 s under a 50 ms statement_timeout - until DatabaseQueryErrors fires, and 10 minutes more, so that the slower budget burn pages within the same incident.",
                inject: "{service: billing, fault: db_slow, sleep_ms: 1000, timeout_ms: 50, rate: 0.1}", alerts: ["DatabaseQueryErrors"],
                sustain: "10m"),
        // The burns: the 6x tier (windows of 30 minutes and 6 hours) may fire before the
        // 14.4x one and resolves only as its 30-minute window empties, so they recover longer.
        failure("availability-burn", "The gateway answers 2.5% of requests with 500 - under HighErrorRate's 5%, but 25 times the 0.1% error budget - until the fast availability burn fires.",
                inject: "{service: gateway, fault: http_errors, rate: 0.025, status: 500}", alerts: ["AvailabilityBudgetBurn"], hold: "45m",
                recover: "45m"),
        failure("latency-burn", "Billing adds 1.1 s to 40% of its requests - its p95 stays under HighLatencyP95's 2.5 s, but 40% miss the 1 s objective (budget 1%) - until the fast latency burn fires.",
                inject: "{service: billing, fault: latency, delay_ms: 1100, rate: 0.4}", alerts: ["LatencyBudgetBurn"], hold: "45m",
                recover: "45m"),
        failure("alertmanager-down", "Alertmanager is stopped until Prometheus' notifications to it fail (PrometheusAlertmanagerErrors), which is delivered once Alertmanager is back.",
                inject: "{stop: alertmanager}", alerts: ["PrometheusAlertmanagerErrors"], hold: "20m", recover: "15m"),
        failure("database-down", "PostgreSQL is stopped until DatabaseConnectionErrors fires.",
                inject: "{stop: postgres}", alerts: ["DatabaseConnectionErrors"], hold: "8m", recover: "15m"),
        failure("cache-misses", "Billing bypasses its Redis cache until HighCacheMissRate fires.",
                inject: "{service: billing, fault: cache_bypass}", alerts: ["HighCacheMissRate"], hold: "25m"),
        // 5% of billing's round trips. Under the tour's traffic billing records about 110 Redis
        // operations a second, in fewer round trips (a listing's MGET counts one per key). At 10%
        // the scripts took most of Redis' time: commands queued past the 250 ms timeout, opened
        // billing's circuit breaker and paged as RedisConnectionErrors. At 3% the slowed
        // operations were at times under 1% of billing's, its p99 dipped under 100 ms and
        // `for` started again.
        failure("redis-latency", "Before 5% of billing's round trips to Redis it runs a 120 ms script, so every client of Redis waits, until RedisHighLatency fires.",
                inject: "{service: billing, fault: redis_slow, sleep_ms: 120, rate: 0.05}", alerts: ["RedisHighLatency"]),
        // 120 ms blocks: every lag sample waits at least one (over the 100 ms threshold). A
        // scrape whose connection lives on the blocked loop waits behind a block at each of its
        // hops there and can still pass the tour's 500 ms scrape timeout (ServiceDown, and no lag
        // sample reaches Prometheus): the tour retries that step (250 ms blocks did it more often).
        failure("event-loop-lag", "A blocking call keeps one of notification's event loops busy, 120 ms at a time, until HighEventLoopLag fires.",
                inject: "{service: notification, fault: event_loop_block, block_ms: 120}", alerts: ["HighEventLoopLag"]),
        failure("descriptor-leak", "Auth opens 20,000 file descriptors a second and never closes them, up to 85% of its limit (scripts/stack runs the services with 8,192), until FileDescriptorExhaustion fires.",
                inject: "{service: auth, fault: fd_leak, share: 0.85, per_second: 20000}", alerts: ["FileDescriptorExhaustion"]),
        failure("redis-down", "Redis is stopped until RedisConnectionErrors fires.",
                inject: "{stop: redis}", alerts: ["RedisConnectionErrors"], hold: "8m", recover: "15m"),
        failure("payment-failures", "The card processor declines 40% of payments until HighPaymentFailureRate fires.",
                inject: "{service: payment, fault: payment_declines, rate: 0.4}", alerts: ["HighPaymentFailureRate"]),
        failure("processor-errors", "The card processor fails 20% of payments until PaymentProcessorErrors fires.",
                inject: "{service: payment, fault: processor_errors, rate: 0.2}", alerts: ["PaymentProcessorErrors"]),
        failure("invoice-failures", "20% of invoice creations fail until InvoiceGenerationFailures fires.",
                inject: "{service: billing, fault: invoice_failures, rate: 0.2}", alerts: ["InvoiceGenerationFailures"]),
        failure("notification-failures", "40% of notification deliveries fail until NotificationDeliveryFailures fires.",
                inject: "{service: notification, fault: notification_failures, rate: 0.4}", alerts: ["NotificationDeliveryFailures"]),
        failure("memory-high", "Billing holds 1.2 GiB of ballast until HighMemoryUsage fires.",
                inject: "{service: billing, fault: memory_ballast, mb: 1200}", alerts: ["HighMemoryUsage"], hold: "20m"),
        failure("memory-critical", "Billing holds 2.2 GiB of ballast until CriticalMemoryUsage fires.",
                inject: "{service: billing, fault: memory_ballast, mb: 2200}", alerts: ["CriticalMemoryUsage", "HighMemoryUsage"]),
        failure("cpu-high", "Billing burns two cores on two threads until HighCPUUsage fires (and FaultInjectionActive, the fault's own info alert). One thread used 0.82-0.87 of a core on a quiet two-core machine, barely over the rule's 0.8, and did not make it fire on a busier one.",
                inject: "{service: billing, fault: cpu_burn, share: 2}", alerts: ["HighCPUUsage", "FaultInjectionActive"], hold: "25m"),
        failure("service-down", "The notification service is stopped until ServiceDown fires.",
                inject: "{stop: notification}", alerts: ["ServiceDown"], hold: "8m", recover: "10m"),
        ("traffic-spike", """
        name: traffic-spike
        description: On top of the usual traffic (make demo's, or the tour's at the same base rate), adds 2.5x the base rate until TrafficSpike fires (3.5 times the usual traffic; the rule's ratio is 2, to an hour that in the tour also carried other scenarios' traffic). The rule compares with the hour that ended 10 minutes ago, so it needs 70 minutes of traffic history first.
        rate: 50
        expect_alerts: [TrafficSpike]
        thresholds: ["alert fired", "achieved>=99%"]
        phases:
          - {name: baseline, duration: 1m, rate: 0}
          - {name: spike, duration: 15m, rate: 2.5x, until: alerts_firing}
          - {name: recover, duration: 10m, rate: 0, until: alerts_resolved}
        """),
        ("traffic-drop", """
        name: traffic-drop
        description: Replaces the usual traffic (stop other load first) - the base rate, then a tenth of it until TrafficDrop fires, then the base rate again. Needs 70 minutes of history at the base rate first.
        rate: 50
        expect_alerts: [TrafficDrop]
        thresholds: ["alert fired", "achieved>=99%"]
        phases:
          - {name: baseline, duration: 1m}
          - {name: drop, duration: 15m, rate: 0.1x, until: alerts_firing}
          - {name: recover, duration: 10m, until: alerts_resolved}
        """),
    ]

    static var names: [String] { all.map(\.name) }

    static func scenario(named name: String) throws(ConfigurationError) -> Scenario? {
        guard let entry = all.first(where: { $0.name == name }) else { return nil }
        return try ScenarioFile.parse(entry.yaml, defaultName: name)
    }
}
