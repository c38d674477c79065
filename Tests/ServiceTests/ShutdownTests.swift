import CloudBillTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM on a real service process during a burst of requests.
@Suite struct ShutdownTests {
    /// The service binaries sit beside the test bundle.
    static func binary(_ name: String) -> String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path
    }

    @Test func sigtermDrainsInFlightRequestsAndExitsZero() async throws {
        let servers = try await TestEnvironment.shared()
        let port = try freePort()
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("cloudbill-shutdown-\(port).log")
        let pid = try spawn([
            "/usr/bin/env", "PORT=\(port)", "DATABASE_URL=\(servers.databaseURL)", "REDIS_URL=\(servers.redisURL)",
            "CLOUDBILL_INTERNAL_TOKEN=test-internal-token", "CLOUDBILL_ADMIN_TOKEN=test-admin-token-0123", Self.binary("BillingSvc"),
        ], log: log)
        let exited = Task { await exitStatus(of: pid) }
        try await Fleet.waitUntilReady(port: port)

        let headers = ["X-CloudBill-Tenant": "shutdown-test", "X-CloudBill-Internal-Token": "test-internal-token"]
        let url = "http://127.0.0.1:\(port)/api/v1/customers"
        let outcomes = try await withThrowingTaskGroup(of: Int?.self) { group in
            for i in 0..<60 {
                group.addTask {
                    try await Task.sleep(for: .milliseconds(i * 5))
                    // nil: no connection could be made, which is what a closed listener does
                    // (the client keeps retrying the connect until its deadline).
                    return try? await HTTP.send(
                        "POST", url, json: ["name": "c\(i)", "email": "c\(i)@example.com"], headers: headers, timeout: .seconds(2)
                    ).status
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(120))
                kill(pid, SIGTERM)
                return -1
            }
            return try await group.reduce(into: [Int?]()) { $0.append($1) }.filter { $0 != -1 }
        }
        let code = await exited.value
        #expect(code == 0, "exit code \(code); log at \(log.path)")
        let answered = outcomes.compactMap { $0 }
        #expect(answered.allSatisfy { $0 == 201 }, "answers during shutdown: \(answered)")
        #expect(answered.count >= 10, "some requests were in flight when SIGTERM came")
        let stored = try await servers.database.query(
            "test_count", tenant: nil, "SELECT count(*) FROM customers WHERE tenant_id = 'shutdown-test'"
        )[0].decode(Int.self, at: 0)
        #expect(stored == answered.count, "every acknowledged customer is stored, and only those")
        // The listener is gone.
        #expect((try? await HTTP.send("GET", "http://127.0.0.1:\(port)/health", timeout: .seconds(2))) == nil)
    }
}
