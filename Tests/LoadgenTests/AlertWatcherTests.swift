import Foundation
import Testing
@testable import loadgen

/// AlertWatcher counts an alert only when it became active after the fault started.
@Suite struct AlertWatcherTests {
    static func alert(_ name: String, _ state: String, activeAt: String, service: String = "api-gateway") -> [String: Any] {
        ["labels": ["alertname": name, "service": service], "state": state, "activeAt": activeAt]
    }

    /// A watcher for `body`; observe() never sends, the transport is there because poll() needs one.
    static func withWatcher(_ expected: [String], _ body: (AlertWatcher) -> Void) async {
        let transport = Transport(connections: 1, timeout: 1)
        body(AlertWatcher(prometheusURL: "http://127.0.0.1:1", expected: expected, transport: transport, origin: .now))
        await transport.shutdown()
    }

    @Test func anAlertActiveBeforeTheFaultDoesNotCount() async {
        await Self.withWatcher(["HighErrorRate"]) { watcher in
            watcher.faultStarted(at: Date(timeIntervalSince1970: 1_796_592_200))  // 2026-12-06T21:23:20Z
            // Firing since before the fault (an earlier failure's): not this fault's alert.
            watcher.observe([Self.alert("HighErrorRate", "firing", activeAt: "2026-12-06T21:23:19.9Z")])
            #expect(watcher.snapshot().first?.pendingAt == nil)
            #expect(watcher.snapshot().first?.firingAt == nil)
            #expect(!watcher.allFiring)
            // Another service's became active after it: that one counts.
            watcher.observe([Self.alert("HighErrorRate", "firing", activeAt: "2026-12-06T21:23:19.9Z"),
                             Self.alert("HighErrorRate", "pending", activeAt: "2026-12-06T21:23:20.25Z", service: "billing-service")])
            #expect(watcher.snapshot().first?.pendingAt != nil)
            #expect(watcher.snapshot().first?.firingAt == nil)
            watcher.observe([Self.alert("HighErrorRate", "firing", activeAt: "2026-12-06T21:23:20.25Z", service: "billing-service")])
            #expect(watcher.snapshot().first?.firingAt != nil)
            #expect(watcher.allFiring)
        }
    }

    @Test func beforeAnyFaultTheWatchersStartIsTheLine() async {
        await Self.withWatcher(["TrafficSpike"]) { watcher in
            watcher.observe([Self.alert("TrafficSpike", "firing", activeAt: "2020-01-01T00:00:00Z")])
            #expect(watcher.snapshot().first?.firingAt == nil)
            let later = ISO8601DateFormatter().string(from: Date().addingTimeInterval(5))
            watcher.observe([Self.alert("TrafficSpike", "firing", activeAt: later)])
            #expect(watcher.snapshot().first?.firingAt != nil)
        }
    }

    @Test func prometheusTimesAreRead() {
        #expect(AlertWatcher.unixTime("1970-01-01T00:00:10Z") == 10)
        #expect(AlertWatcher.unixTime("1970-01-01T00:00:10.5Z") == 10.5)
        #expect(abs((AlertWatcher.unixTime("1970-01-01T00:00:10.123456789Z") ?? 0) - 10.123456789) < 1e-6)
        #expect(AlertWatcher.unixTime("1970-01-01T01:00:10+01:00") == 10)
        #expect(AlertWatcher.unixTime("yesterday") == nil)
        #expect(AlertWatcher.unixTime("1970-01-01T00:00:10.Z") == nil)
    }

    /// A budget burn resolves with the fastest burn rate that fired; the slower ones, which
    /// read windows of hours, may keep firing.
    @Test func aBudgetBurnResolvesWithItsFastestRateThatFired() async {
        func burn(_ rate: String, _ state: String) -> [String: Any] {
            ["labels": ["alertname": "AvailabilityBudgetBurn", "service": "api-gateway", "burn_rate": rate], "state": state,
             "activeAt": ISO8601DateFormatter().string(from: Date().addingTimeInterval(1))]
        }
        await Self.withWatcher(["AvailabilityBudgetBurn"]) { watcher in
            // The slower rate fires first: the alert fired.
            watcher.observe([burn("6x", "firing"), burn("14.4x", "pending")])
            #expect(watcher.snapshot().first?.firingAt != nil)
            watcher.observe([burn("6x", "firing"), burn("14.4x", "firing")])
            // The fast one resolves, the slow one still fires: resolved.
            watcher.observe([burn("6x", "firing")])
            #expect(watcher.snapshot().first?.resolvedAt != nil)
            #expect(watcher.allResolved)
            // It fires again: not resolved any more.
            watcher.observe([burn("6x", "firing"), burn("14.4x", "firing")])
            #expect(!watcher.allResolved)
        }
        await Self.withWatcher(["AvailabilityBudgetBurn"]) { watcher in
            // Only the slower rate fired: its own resolution counts.
            watcher.observe([burn("6x", "firing")])
            watcher.observe([burn("6x", "firing"), burn("14.4x", "pending")])
            #expect(!watcher.allResolved)
            watcher.observe([])
            #expect(watcher.allResolved)
        }
    }
}
