import CloudBillTestSupport
import Foundation
import Synchronization
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

        // Raw sockets, one connection per request, so that each way a request can end is seen
        // as itself (an HTTP client's retries and errors would blur them): answered; refused
        // (the listener is closed); closed before any byte of an answer (a connection accepted
        // as shutdown began and closed idle: allowed, if the request left no trace); or cut
        // off in the middle of an answer (never allowed).
        enum Outcome: Sendable, Equatable { case answered(Int), refused, unanswered(Int), truncated(String) }
        final class Count: Sendable { let value = Atomic<Int>(0) }
        let answeredSoFar = Count()
        let outcomes = try await withThrowingTaskGroup(of: Outcome?.self) { group in
            for i in 0..<60 {
                group.addTask {
                    try await Task.sleep(for: .milliseconds(i * 5))
                    let body = #"{"name": "c\#(i)", "email": "c\#(i)@example.com"}"#
                    let request = "POST /api/v1/customers HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                        + "X-CloudBill-Tenant: shutdown-test\r\nX-CloudBill-Internal-Token: test-internal-token\r\n"
                        + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
                    do {
                        let response = try await RawHTTP.exchange(Array(request.utf8), port: port, timeoutSeconds: 10)
                        if response.isEmpty { return .unanswered(i) }
                        // Complete: a status line, the end of the headers, and Content-Length bytes of body.
                        guard let status = RawHTTP.status(of: response), let headersEnd = response.range(of: "\r\n\r\n"),
                              let lengthLine = response[..<headersEnd.lowerBound].split(separator: "\r\n")
                                  .first(where: { $0.lowercased().hasPrefix("content-length:") }),
                              let length = Int(lengthLine.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)),
                              response[headersEnd.upperBound...].utf8.count == length
                        else { return .truncated(String(response.prefix(120))) }
                        answeredSoFar.value.add(1, ordering: .relaxed)
                        return .answered(status)
                    } catch let failure as RawHTTP.Failure where failure.description.hasSuffix("errno \(ECONNREFUSED)") {
                        return .refused
                    }
                }
            }
            // SIGTERM once ten requests were answered (at most after 5 s), while the others
            // are still being sent: a fixed delay found a busy machine with only 9 answered.
            group.addTask {
                let deadline = ContinuousClock.now + .seconds(5)
                while answeredSoFar.value.load(ordering: .relaxed) < 10, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(2))
                }
                kill(pid, SIGTERM)
                return nil
            }
            return try await group.reduce(into: [Outcome]()) { if let outcome = $1 { $0.append(outcome) } }
        }
        let code = await exited.value
        #expect(code == 0, "exit code \(code); log at \(log.path)")
        let answered = outcomes.compactMap { outcome -> Int? in if case .answered(let status) = outcome { status } else { nil } }
        #expect(answered.allSatisfy { $0 == 201 }, "answers during shutdown: \(answered)")
        let truncated = outcomes.filter { if case .truncated = $0 { true } else { false } }
        #expect(truncated.isEmpty, "answers cut off: \(truncated)")
        let unanswered = outcomes.compactMap { outcome -> Int? in if case .unanswered(let i) = outcome { i } else { nil } }
        #expect(answered.count + unanswered.count + outcomes.filter { $0 == .refused }.count == 60)
        for i in unanswered {
            let rows = try await servers.database.query(
                "test_count_by_email", tenant: nil, "SELECT count(*) FROM customers WHERE tenant_id = 'shutdown-test' AND email = $1", ["c\(i)@example.com"]
            )[0].decode(Int.self, at: 0)
            #expect(rows == 0, "request \(i) got no answer, yet its customer was stored")
        }
        #expect(answered.count >= 10, "some requests were in flight when SIGTERM came")
        let stored = try await servers.database.query(
            "test_count", tenant: nil, "SELECT count(*) FROM customers WHERE tenant_id = 'shutdown-test'"
        )[0].decode(Int.self, at: 0)
        #expect(stored == answered.count, "every acknowledged customer is stored, and only those")
        // The listener is gone.
        #expect((try? await HTTP.send("GET", "http://127.0.0.1:\(port)/health", timeout: .seconds(2))) == nil)
    }
}
