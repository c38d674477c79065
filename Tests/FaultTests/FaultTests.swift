import CloudBillInstrumentation
import CloudBillKit
import CloudBillStorage
import CloudBillTestSupport
import Foundation
import Synchronization
import Testing

/// Every fault, shown to act through its real mechanism, and the admin API that injects
/// them. Serialised: the faults act on shared services, and the process-level ones on a
/// machine whose cores they measure.
@Suite(.serialized) struct FaultTests {}

// MARK: Request faults

extension FaultTests {
    @Suite struct RequestFaults {
        @Test func httpErrorsOfOneTenantLeaveTheOthersAlone() async throws {
            let fleet = try await FaultFleet.shared()
            let (unlucky, other) = (newTenant(), newTenant())
            let before = try await fleet.scrape("billing-service")
            try await fleet.inject("billing-service", #"{"faults": {"http_errors": {"tenants": ["\#(unlucky)"]}}}"#)
            var statuses: [String: [Int]] = [:]
            for tenant in [unlucky, other] {
                for _ in 0..<5 {
                    statuses[tenant, default: []].append(try await fleet.call("billing-service", "GET", "/api/v1/invoices", tenant: tenant).status)
                }
            }
            let after = try await fleet.scrape("billing-service")
            try await fleet.clearFaults("billing-service")

            #expect(statuses[unlucky] == [500, 500, 500, 500, 500])
            #expect(statuses[other] == [200, 200, 200, 200, 200])
            // Counted under the tenant, as TenantHighErrorRate reads it.
            let failed = ["tenant_id": unlucky, "status": "500"]
            #expect(after.sum("http_requests_total", failed) - before.sum("http_requests_total", failed) == 5)
        }

        @Test func httpErrorsAnswerTheAskedShareOfARouteWith5xx() async throws {
            let fleet = try await FaultFleet.shared()
            let tenant = newTenant()
            let route = "/api/v1/invoices/{id}"
            let before = try await fleet.scrape("billing-service")
            try await fleet.inject("billing-service", #"{"faults": {"http_errors": {"rate": 0.3, "status": 503, "routes": ["/api/v1/invoices/{id}"]}}}"#)

            let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        var statuses: [Int] = []
                        for _ in 0..<100 {
                            let path = "/api/v1/invoices/\(UUID().uuidString.lowercased())"
                            statuses.append(try await fleet.call("billing-service", "GET", path, tenant: tenant).status)
                        }
                        return statuses
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            // Another route of the same service is not affected.
            let other = try await fleet.call("billing-service", "GET", "/api/v1/invoices", tenant: tenant)
            let after = try await fleet.scrape("billing-service")
            try await fleet.clearFaults("billing-service")

            #expect(statuses.count == 1000)
            let failures = statuses.filter { $0 == 503 }.count
            // 1000 draws at 0.3: one standard deviation is 0.0145, so ±0.075 (5 of them) fails
            // about once in five million runs by chance, and still catches a wrong share.
            #expect(abs(Double(failures) / 1000 - 0.3) <= 0.075, "\(failures) of 1000 answered 503")
            #expect(statuses.allSatisfy { $0 == 503 || $0 == 404 }, "the others are handled as usual")
            #expect(other.status == 200)
            // The 5xx are real responses, counted as such.
            let labels = ["route": route, "status": "503", "tenant_id": tenant]
            #expect(after.sum("http_requests_total", labels) - before.sum("http_requests_total", labels) == Double(failures))
        }

        @Test func theAdminAPIAndTheProbesAreNeverFaulted() async throws {
            let fleet = try await FaultFleet.shared()
            try await fleet.inject("auth-service", #"{"faults": {"http_errors": {"rate": 1}, "latency": {"delay_ms": 2000}}}"#)
            let start = ContinuousClock.now
            for path in ["/health", "/ready", "/metrics"] {
                #expect(try await HTTP.send("GET", fleet.url("auth-service", path)).status == 200, "\(path)")
            }
            #expect(try await fleet.faults("auth-service", "GET").status == 200)
            #expect(ContinuousClock.now - start < .seconds(1), "no injected delay")
            // Everything else fails.
            #expect(try await fleet.call("auth-service", "POST", "/internal/tokens", tenant: newTenant(), json: ["api_key": "x"]).status == 500)
            try await fleet.clearFaults("auth-service")
        }

        @Test func latencyDelaysRequestsBeforeTheyAreHandled() async throws {
            let fleet = try await FaultFleet.shared()
            let tenant = newTenant()
            try await fleet.inject("billing-service", #"{"faults": {"latency": {"distribution": "uniform", "min_ms": 300, "max_ms": 400, "routes": ["/api/v1/invoices"]}}}"#)
            for _ in 0..<3 {
                let start = ContinuousClock.now
                #expect(try await fleet.call("billing-service", "GET", "/api/v1/invoices", tenant: tenant).status == 200)
                let elapsed = ContinuousClock.now - start
                #expect(elapsed >= .milliseconds(300) && elapsed < .milliseconds(1000), "\(elapsed)")
            }
            let start = ContinuousClock.now
            _ = try await fleet.call("billing-service", "GET", "/api/v1/invoices/\(UUID())", tenant: tenant)
            #expect(ContinuousClock.now - start < .milliseconds(300), "another route is not delayed")
            let scrape = try await fleet.scrape("billing-service")
            #expect(scrape.value("cloudbill_fault_active", ["fault": "latency"]) == 1)
            try await fleet.clearFaults("billing-service")
            #expect(try await fleet.scrape("billing-service").value("cloudbill_fault_active", ["fault": "latency"]) == 0)
        }
    }
}

// MARK: PostgreSQL

extension FaultTests {
    @Suite struct DatabaseFaults {
        @Test func dbSlowSleepsInsidePostgreSQL() async throws {
            let fleet = try await FaultFleet.shared()
            let tenant = newTenant()
            let before = try await fleet.scrape("billing-service")
            try await fleet.inject("billing-service", #"{"faults": {"db_slow": {"sleep_ms": 1500}}}"#)
            let request = Task {
                let start = ContinuousClock.now
                let response = try await fleet.call("billing-service", "GET", "/api/v1/invoices", tenant: tenant)
                return (response.status, ContinuousClock.now - start)
            }
            // The sleep runs in the service's own session, in PostgreSQL.
            var sleeping = 0
            let deadline = ContinuousClock.now + .seconds(1.4)
            while sleeping == 0, ContinuousClock.now < deadline {
                sleeping = try await fleet.database.query(
                    "test_activity", tenant: nil,
                    """
                    SELECT count(*) FROM pg_stat_activity
                    WHERE application_name = 'billing-service' AND state = 'active' AND query LIKE 'SELECT pg_sleep(%'
                    """
                )[0].decode(Int.self, at: 0)
                if sleeping == 0 { try await Task.sleep(for: .milliseconds(50)) }
            }
            let (status, elapsed) = try await request.value
            try await fleet.clearFaults("billing-service")
            let after = try await fleet.scrape("billing-service")

            #expect(sleeping >= 1, "pg_stat_activity shows the sleep")
            #expect(status == 200)
            #expect(elapsed >= .milliseconds(1500))
            // The statement's own duration includes the sleep: an observation above 1 s.
            let labels = ["operation": "list_invoices", "tenant_id": tenant]
            let count = after.sum("db_query_duration_seconds_count", labels) - before.sum("db_query_duration_seconds_count", labels)
            let fast = after.sum("db_query_duration_seconds_bucket", labels.merging(["le": "1.0"]) { a, _ in a })
                - before.sum("db_query_duration_seconds_bucket", labels.merging(["le": "1.0"]) { a, _ in a })
            #expect(count == 1)
            #expect(after.value("db_query_duration_seconds_bucket", labels.merging(["le": "1.0"]) { a, _ in a }) != nil, "the 1 s bucket is exposed")
            #expect(fast == 0, "the query took more than 1 s")
            #expect(after.sum("db_query_duration_seconds_sum", labels) >= 1.5)
        }

        @Test func dbSlowPastItsTimeoutFailsTheStatementInPostgreSQL() async throws {
            let fleet = try await FaultFleet.shared()
            let tenant = newTenant()
            let before = try await fleet.scrape("billing-service")
            // PostgreSQL cancels the 2 s sleep at its 100 ms statement_timeout (57014).
            try await fleet.inject("billing-service", #"{"faults": {"db_slow": {"sleep_ms": 2000, "timeout_ms": 100}}}"#)
            let start = ContinuousClock.now
            let failed = try await fleet.call("billing-service", "GET", "/api/v1/invoices", tenant: tenant)
            let elapsed = ContinuousClock.now - start
            try await fleet.clearFaults("billing-service")
            // Cleared: the next statement runs under the session's own timeout again.
            let served = try await fleet.call("billing-service", "GET", "/api/v1/invoices", tenant: tenant)
            let after = try await fleet.scrape("billing-service")

            #expect(failed.status == 503, "a statement cancelled by its timeout answers 503 database_timeout")
            #expect(elapsed < .milliseconds(1500), "cancelled at the fault's timeout, not after the 2 s sleep")
            #expect(served.status == 200)
            let errors = ["tenant_id": tenant, "error_type": "timeout"]
            #expect(after.sum("db_errors_total", errors) - before.sum("db_errors_total", errors) == 1)
        }

        @Test func dbPoolLimitShrinksThePoolAndMakesCallersWait() async throws {
            let fleet = try await FaultFleet.shared()
            let tenant = newTenant()
            // Each request holds its connection for 200 ms of real PostgreSQL sleep.
            try await fleet.inject("billing-service", #"{"faults": {"db_slow": {"sleep_ms": 200}}}"#)
            _ = try await Self.load(fleet, tenant: tenant, requests: 8)  // opens connections up to the configured 8
            let warm = try await fleet.scrape("billing-service").value("db_pool_total_connections") ?? 0

            try await fleet.inject("billing-service", #"{"faults": {"db_slow": {"sleep_ms": 200}, "db_pool_limit": {"max_connections": 2}}}"#)
            let shrunk = try await fleet.scrape("billing-service").value("db_pool_total_connections") ?? -1

            // 8 requests of 200 ms on 2 connections: four rounds, at least 800 ms.
            let load = Task { try await Self.load(fleet, tenant: tenant, requests: 8) }
            var maximumWaiting = 0.0
            var samples: [(total: Double, active: Double, idle: Double)] = []
            let deadline = ContinuousClock.now + .milliseconds(700)
            while ContinuousClock.now < deadline {
                let scrape = try await fleet.scrape("billing-service")
                maximumWaiting = max(maximumWaiting, scrape.value("db_pool_waiting_requests") ?? 0)
                samples.append((scrape.value("db_pool_total_connections") ?? -1, scrape.value("db_pool_active_connections") ?? -1, scrape.value("db_pool_idle_connections") ?? -1))
                try await Task.sleep(for: .milliseconds(40))
            }
            let statuses = try await load.value
            try await fleet.clearFaults("billing-service")

            #expect(warm > 2, "the pool had grown beyond the limit before")
            #expect(shrunk <= 2, "idle connections above the limit are closed at once")
            #expect(maximumWaiting > 0, "callers queued for a connection")
            #expect(samples.allSatisfy { $0.total <= 2 && $0.active <= 2 && $0.active + $0.idle <= $0.total }, "\(samples)")
            #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
        }

        static func load(_ fleet: FaultFleet, tenant: String, requests: Int) async throws -> [Int] {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<requests {
                    group.addTask { try await fleet.call("billing-service", "GET", "/api/v1/invoices", tenant: tenant).status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
    }
}

// MARK: Redis

extension FaultTests {
    @Suite struct CacheFaults {
        @Test func cacheFlushRemovesKeysSoReadsMiss() async throws {
            let fleet = try await FaultFleet.shared()
            let tenant = newTenant()
            let invoice = try await fleet.createInvoice(tenant: tenant)
            _ = try await fleet.call("billing-service", "GET", "/api/v1/invoices/\(invoice)", tenant: tenant)  // cached now
            let before = try await fleet.scrape("billing-service")
            try await fleet.inject("billing-service", #"{"faults": {"cache_flush": {"pattern": "billing:invoice:\#(tenant):*"}}}"#)
            #expect(try await fleet.call("billing-service", "GET", "/api/v1/invoices/\(invoice)", tenant: tenant).status == 200)
            let flushed = try await fleet.scrape("billing-service")
            #expect(try await fleet.call("billing-service", "GET", "/api/v1/invoices/\(invoice)", tenant: tenant).status == 200)
            let after = try await fleet.scrape("billing-service")
            try await fleet.clearFaults("billing-service")

            func delta(_ a: Exposition, _ b: Exposition, _ operation: String) -> Double {
                b.sum("redis_operations_total", ["operation": operation, "tenant_id": tenant]) - a.sum("redis_operations_total", ["operation": operation, "tenant_id": tenant])
            }
            #expect(delta(before, flushed, "miss") == 1, "the flushed key is really gone")
            #expect(delta(before, flushed, "hit") == 0)
            #expect(flushed.sum("redis_operations_total", ["operation": "delete"]) > before.sum("redis_operations_total", ["operation": "delete"]))
            #expect(delta(flushed, after, "hit") == 1, "the read put it back")
        }

        @Test func cacheBypassReadsReallyMissInRedis() async throws {
            let fleet = try await FaultFleet.shared()
            let tenant = newTenant()
            let invoice = try await fleet.createInvoice(tenant: tenant)
            _ = try await fleet.call("billing-service", "GET", "/api/v1/invoices/\(invoice)", tenant: tenant)
            let before = try await fleet.scrape("billing-service")
            try await fleet.inject("billing-service", #"{"faults": {"cache_bypass": {"rate": 1}}}"#)
            for _ in 0..<3 {
                #expect(try await fleet.call("billing-service", "GET", "/api/v1/invoices/\(invoice)", tenant: tenant).status == 200)
            }
            let bypassed = try await fleet.scrape("billing-service")
            try await fleet.clearFaults("billing-service")
            #expect(try await fleet.call("billing-service", "GET", "/api/v1/invoices/\(invoice)", tenant: tenant).status == 200)
            let after = try await fleet.scrape("billing-service")

            func count(_ e: Exposition, _ operation: String) -> Double {
                e.sum("redis_operations_total", ["operation": operation, "tenant_id": tenant])
            }
            #expect(count(bypassed, "miss") - count(before, "miss") == 3)
            #expect(count(bypassed, "hit") - count(before, "hit") == 0)
            // The misses were timed Redis round trips.
            #expect(bypassed.sum("redis_operation_duration_seconds_count", ["operation": "miss"]) - before.sum("redis_operation_duration_seconds_count", ["operation": "miss"]) >= 3)
            #expect(count(after, "hit") - count(bypassed, "hit") == 1, "reads hit again once cleared")
        }

        @Test func redisSlowKeepsRedisItselfBusy() async throws {
            let fleet = try await FaultFleet.shared()
            let tenant = newTenant()
            let invoice = try await fleet.createInvoice(tenant: tenant)
            _ = try await fleet.call("billing-service", "GET", "/api/v1/invoices/\(invoice)", tenant: tenant)  // cached now
            let before = try await fleet.scrape("billing-service")
            try await fleet.inject("billing-service", #"{"faults": {"redis_slow": {"sleep_ms": 150, "rate": 1}}}"#)
            // Redis itself is busy: another client's command waits behind the script.
            let client = Cache(configuration: RedisConfiguration(port: fleet.redis.port), metrics: ServiceMetrics(service: "fault-tests-redis").cache)
            #expect(await client.ping())  // connected before the script runs
            // Another client pings Redis again and again while the read runs; the longest
            // ping waited behind the script, whenever it reached Redis.
            let reading = Atomic<Bool>(true)
            let other = Task {
                var answered = true
                var longest = Duration.zero
                while reading.load(ordering: .relaxed) {
                    let start = ContinuousClock.now
                    answered = await client.ping() && answered
                    longest = max(longest, ContinuousClock.now - start)
                }
                return (answered, longest)
            }
            let start = ContinuousClock.now
            let read = try await fleet.call("billing-service", "GET", "/api/v1/invoices/\(invoice)", tenant: tenant)
            let elapsed = ContinuousClock.now - start
            reading.store(false, ordering: .relaxed)
            let (otherAnswered, otherWaited) = await other.value
            await client.close()
            let slowed = try await fleet.scrape("billing-service")
            try await fleet.clearFaults("billing-service")
            let after = try await fleet.scrape("billing-service")
            #expect(try await fleet.call("billing-service", "GET", "/api/v1/invoices/\(invoice)", tenant: tenant).status == 200)
            let cleared = try await fleet.scrape("billing-service")

            let hit = ["operation": "hit", "tenant_id": tenant]
            #expect(read.status == 200)
            #expect(slowed.sum("redis_operations_total", hit) - before.sum("redis_operations_total", hit) == 1, "still a hit: the value is served")
            #expect(elapsed >= .milliseconds(150))
            // The hit's recorded round trip holds the wait: above the 0.1 s bucket.
            let fast = ["operation": "hit", "le": "0.1"]
            #expect(slowed.sum("redis_operation_duration_seconds_bucket", fast) == before.sum("redis_operation_duration_seconds_bucket", fast))
            #expect(slowed.sum("redis_operation_duration_seconds_sum", ["operation": "hit"]) - before.sum("redis_operation_duration_seconds_sum", ["operation": "hit"]) >= 0.15)
            #expect(otherAnswered)
            #expect(otherWaited >= .milliseconds(50), "a command of another client waited behind the script: \(otherWaited)")
            #expect(slowed.sum("redis_errors_total") == before.sum("redis_errors_total"), "the script's reply is not an error")
            #expect(cleared.sum("redis_operation_duration_seconds_bucket", fast) > after.sum("redis_operation_duration_seconds_bucket", fast), "fast again once cleared")
        }
    }
}

// MARK: Domain faults

extension FaultTests {
    @Suite struct DomainFaults {
        @Test func processorErrorsAndPaymentDeclinesFailCharges() async throws {
            let fleet = try await FaultFleet.shared()
            let tenant = newTenant()
            func pay() async throws -> HTTP.Response {
                let invoice = try await fleet.createInvoice(tenant: tenant)
                return try await fleet.call(
                    "payment-service", "POST", "/api/v1/payments", tenant: tenant,
                    json: ["invoice_id": invoice, "payment_method": "pm_ok"], headers: ["Idempotency-Key": UUID().uuidString]
                )
            }
            try await fleet.inject("payment-service", #"{"faults": {"processor_errors": {"rate": 1}}}"#)
            let failed = try await pay()
            try await fleet.inject("payment-service", #"{"faults": {"payment_declines": {"rate": 1}}}"#)
            let declined = try await pay()
            try await fleet.clearFaults("payment-service")
            let succeeded = try await pay()
            let scrape = try await fleet.scrape("payment-service")

            #expect(failed.status == 201 && failed["status"] == "failed" && failed["failure_reason"] == "processor_error", "\(failed.text)")
            #expect(declined.status == 201 && declined["status"] == "failed" && declined["failure_reason"] == "card_declined", "\(declined.text)")
            #expect(succeeded["status"] == "succeeded", "\(succeeded.text)")
            #expect(scrape.value("cloudbill_payments_failed_total", ["tenant_id": tenant, "reason": "processor_error"]) == 1)
            #expect(scrape.value("cloudbill_payments_failed_total", ["tenant_id": tenant, "reason": "card_declined"]) == 1)
            #expect(scrape.value("cloudbill_payments_total", ["tenant_id": tenant]) == 3)
            #expect(try await fleet.count("payments", tenant: tenant) == 3, "every charge is stored with its outcome")
        }

        @Test func invoiceFailuresFailGenerationAndStoreNothing() async throws {
            let fleet = try await FaultFleet.shared()
            let tenant = newTenant()
            let customer = try await fleet.call("billing-service", "POST", "/api/v1/customers", tenant: tenant, json: ["name": "F", "email": "f@example.com"])
            let customerID = try #require(customer["id"])
            try await fleet.inject("billing-service", #"{"faults": {"invoice_failures": {"rate": 1}}}"#)
            let response = try await fleet.call("billing-service", "POST", "/api/v1/invoices", tenant: tenant, json: FaultFleet.InvoiceRequest(customerID: customerID))
            try await fleet.clearFaults("billing-service")
            let scrape = try await fleet.scrape("billing-service")

            #expect(response.status == 500 && response["error"] == "invoice_generation_failed", "\(response.text)")
            #expect(scrape.value("cloudbill_invoices_failed_total", ["tenant_id": tenant, "reason": "generation_error"]) == 1)
            #expect(try await fleet.count("invoices", tenant: tenant) == 0)
        }

        @Test func notificationFailuresFailOnlyTheNamedChannel() async throws {
            let fleet = try await FaultFleet.shared()
            let tenant = newTenant()
            try await fleet.inject("notification-service", #"{"faults": {"notification_failures": {"rate": 1, "channels": ["email"]}}}"#)
            let email = try await fleet.call("notification-service", "POST", "/api/v1/notifications", tenant: tenant,
                                             json: ["type": "email", "recipient": "a@example.com", "subject": "s", "body": "b"])
            let sms = try await fleet.call("notification-service", "POST", "/api/v1/notifications", tenant: tenant,
                                           json: ["type": "sms", "recipient": "+14155550100", "body": "b"])
            let emailStatus = try await Self.finalStatus(fleet, tenant: tenant, id: try #require(email["id"]))
            let smsStatus = try await Self.finalStatus(fleet, tenant: tenant, id: try #require(sms["id"]))
            try await fleet.clearFaults("notification-service")
            let scrape = try await fleet.scrape("notification-service")

            #expect(emailStatus == "failed")
            #expect(smsStatus == "sent")
            #expect(scrape.value("cloudbill_notifications_failed_total", ["tenant_id": tenant, "notification_type": "email"]) == 1)
            #expect(scrape.value("cloudbill_notifications_sent_total", ["tenant_id": tenant, "notification_type": "sms"]) == 1)
        }

        static func finalStatus(_ fleet: FaultFleet, tenant: String, id: String) async throws -> String {
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                let status = try await fleet.call("notification-service", "GET", "/api/v1/notifications/\(id)", tenant: tenant)["status"]
                if let status, status != "queued" { return status }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw TestFailure("notification \(id) still queued")
        }
    }
}

// MARK: The admin API

extension FaultTests {
    @Suite struct AdminAPI {
        @Test func everyServiceServesTheFaultAPIBehindTheAdminToken() async throws {
            let fleet = try await FaultFleet.shared()
            for service in fleet.ports.keys.sorted() {
                let shown = try await fleet.faults(service, "GET")
                #expect(shown.status == 200 && shown["service"] == service, "\(service): \(shown.text)")
                for (method, body) in [("GET", nil), ("PUT", #"{"faults": {"http_errors": {"rate": 1}}}"#), ("DELETE", nil)] as [(String, String?)] {
                    for headers in [[:], ["X-Admin-Token": "wrong"]] {
                        let refused = try await HTTP.send(method, fleet.url(service, "/admin/faults"), rawBody: body.map { Array($0.utf8) }, headers: headers)
                        #expect(refused.status == 401 && refused["error"] == "unauthorized", "\(service) \(method): \(refused.text)")
                    }
                }
                let scrape = try await fleet.scrape(service)
                #expect(scrape.value("cloudbill_fault_active", ["fault": "http_errors"]) == 0, "\(service): nothing applied")
                #expect(try await fleet.faults(service, "GET").activeFaults.isEmpty)
            }
        }

        @Test func oneFaultCanBeSetAndClearedAlone() async throws {
            let fleet = try await FaultFleet.shared()
            try await fleet.inject("auth-service", #"{"duration_s": 60, "faults": {"latency": {"delay_ms": 1}}}"#)
            let set = try await fleet.faults("auth-service", "PUT", "/http_errors", body: #"{"rate": 0.1, "duration_s": 30}"#)
            #expect(set.status == 200 && set.activeFaults == ["latency", "http_errors"], "\(set.text)")
            let cleared = try await fleet.faults("auth-service", "DELETE", "/latency")
            #expect(cleared.activeFaults == ["http_errors"], "\(cleared.text)")
            let fault = try #require(try cleared.json()["faults"] as? [String: Any])["http_errors"] as? [String: Any]
            #expect(fault?["rate"] as? Double == 0.1 && fault?["status"] as? Int == 500 && fault?["duration_s"] as? Double == 30)
            #expect(try await fleet.faults("auth-service", "DELETE", "/no_such_fault").status == 404)
            try await fleet.clearFaults("auth-service")
        }

        @Test func faultsExpireOnTime() async throws {
            let fleet = try await FaultFleet.shared()
            let start = ContinuousClock.now
            try await fleet.inject("auth-service", #"{"faults": {"latency": {"delay_ms": 1, "duration_s": 1}, "http_errors": {"rate": 0.01, "duration_s": 30}}}"#)
            #expect(try await fleet.scrape("auth-service").value("cloudbill_fault_active", ["fault": "latency"]) == 1)
            var clearedAfter: Duration?
            while ContinuousClock.now - start < .seconds(5) {
                if try await fleet.scrape("auth-service").value("cloudbill_fault_active", ["fault": "latency"]) == 0 {
                    clearedAfter = ContinuousClock.now - start
                    break
                }
                try await Task.sleep(for: .milliseconds(25))
            }
            let shown = try await fleet.faults("auth-service", "GET")
            try await fleet.clearFaults("auth-service")

            let elapsed = try #require(clearedAfter, "latency never cleared")
            // Not before its second, and not much after (a fault that never expired would stay).
            #expect(elapsed >= .seconds(1) && elapsed < .milliseconds(2500), "cleared after \(elapsed)")
            #expect(shown.activeFaults == ["http_errors"], "only the expired fault is gone: \(shown.text)")
        }

        /// Plans that must be refused, each beside a valid fault so that atomicity shows, and the field each names.
        static let badPlans: [(body: String, field: String)] = [
            (#"{"faults": {"http_errors": {"rate": 1}, "bogus": {}}}"#, "faults.bogus"),
            (#"{"faults": {"http_errors": {"rate": 1.5}}}"#, "faults.http_errors.rate"),
            (#"{"faults": {"http_errors": {"rate": 1}, "cache_bypass": {"rate": -0.1}}}"#, "faults.cache_bypass.rate"),
            (#"{"faults": {"http_errors": {"rate": 1}, "cache_bypass": {"rate": "high"}}}"#, "faults.cache_bypass.rate"),
            (#"{"faults": {"http_errors": {"rate": 1, "duration_s": -5}}}"#, "faults.http_errors.duration_s"),
            (#"{"duration_s": -1, "faults": {"http_errors": {"rate": 1}}}"#, "duration_s"),
            (#"{"faults": {"http_errors": {"rate": 1}, "memory_ballast": {"mb": 999999}}}"#, "faults.memory_ballast.mb"),
            (#"{"faults": {"http_errors": {"rate": 1}, "cpu_burn": {"share": 0}}}"#, "faults.cpu_burn.share"),
            (#"{"faults": {"http_errors": {"rate": 1}, "cpu_burn": {"share": 4.5}}}"#, "faults.cpu_burn.share"),
            (#"{"faults": {"http_errors": {"rate": 1, "rat": 0.5}}}"#, "faults.http_errors.rat"),
            (#"{"faults": {"http_errors": {"rate": 1, "routes": ["/nowhere"]}}}"#, "faults.http_errors.routes[0]"),
            (#"{"faults": {"http_errors": {"rate": 1, "tenants": []}}}"#, "faults.http_errors.tenants"),
            (#"{"faults": {"http_errors": {"rate": 1, "tenants": [""]}}}"#, "faults.http_errors.tenants[0]"),
            (#"{"faults": {"http_errors": {"rate": 1}, "redis_slow": {"sleep_ms": 201}}}"#, "faults.redis_slow.sleep_ms"),
            (#"{"faults": {"http_errors": {"rate": 1}, "event_loop_block": {"block_ms": 0}}}"#, "faults.event_loop_block.block_ms"),
            (#"{"faults": {"http_errors": {"rate": 1}, "fd_leak": {"share": 0.96}}}"#, "faults.fd_leak.share"),
            (#"{"faults": {"http_errors": {"rate": 1}, "fd_leak": {"per_second": 0}}}"#, "faults.fd_leak.per_second"),
            (#"{"faults": {"http_errors": {"rate": 1}, "db_slow": {"sleep_ms": 10, "timeout_ms": 0}}}"#, "faults.db_slow.timeout_ms"),
            (#"{"faults": {"http_errors": {"rate": 1}, "payment_declines": {"rate": 0.5}}}"#, "faults.payment_declines"),
            (#"{"faults": {"http_errors": {"rate": 1}, "latency": {"distribution": "gamma"}}}"#, "faults.latency.distribution"),
            (#"{"faults": {"http_errors": {"rate": 1}, "db_pool_limit": {"max_connections": 9}}}"#, "faults.db_pool_limit.max_connections"),
            (#"{"faults": {"http_errors": {"rate": 1}, "db_slow": {}}}"#, "faults.db_slow.sleep_ms"),
            (#"{"fault": {"http_errors": {"rate": 1}}}"#, "faults"),
            (#"{"faults": [{"http_errors": {"rate": 1}}]}"#, "faults"),
        ]

        @Test(arguments: badPlans)
        func badPlansAreRefusedNamingTheFieldAndChangeNothing(body: String, field: String) async throws {
            let fleet = try await FaultFleet.shared()
            try await fleet.inject("billing-service", #"{"faults": {"latency": {"delay_ms": 1}}}"#)
            let refused = try await fleet.faults("billing-service", "PUT", body: body)
            let shown = try await fleet.faults("billing-service", "GET")
            let scrape = try await fleet.scrape("billing-service")
            try await fleet.clearFaults("billing-service")

            #expect(refused.status == 400 && refused["error"] == "invalid_fault_plan", "\(refused.text)")
            #expect(refused["message"]?.contains("'\(field)'") == true, "\(refused.text)")
            #expect(shown.activeFaults == ["latency"], "the earlier plan stands: \(shown.text)")
            #expect(scrape.value("cloudbill_fault_active", ["fault": "http_errors"]) == 0)
        }

        @Test func malformedJSONAndFaultsAServiceCannotHostAreRefused() async throws {
            let fleet = try await FaultFleet.shared()
            let malformed = try await fleet.faults("billing-service", "PUT", body: #"{"faults": {"http_errors": {"rate": 0.1}"#)
            #expect(malformed.status == 400 && malformed["error"] == "invalid_json", "\(malformed.text)")
            let gateway = try await fleet.faults("api-gateway", "PUT", body: #"{"faults": {"db_slow": {"sleep_ms": 100}}}"#)
            #expect(gateway.status == 400 && gateway["message"]?.contains("'faults.db_slow'") == true, "\(gateway.text)")
            let wrongType = try await HTTP.send(
                "PUT", fleet.url("billing-service", "/admin/faults"), rawBody: Array("faults=1".utf8),
                headers: ["X-Admin-Token": FaultFleet.adminToken, "Content-Type": "application/x-www-form-urlencoded"]
            )
            #expect(wrongType.status == 415)
            #expect(try await fleet.faults("billing-service", "GET").activeFaults.isEmpty)
        }
    }
}

// MARK: The process

extension FaultTests {
    /// Memory and CPU are measured on a service running as a process of its own.
    @Suite struct ProcessFaults {
        @Test func memoryBallastIsResidentUntilCleared() async throws {
            try await ServiceProcess.with("AuthSvc") { service in
                func resident() async throws -> Double { try #require(try await service.scrape().value("process_resident_memory_bytes")) }
                let before = try await resident()
                let applied = try await service.faults("PUT", body: #"{"faults": {"memory_ballast": {"mb": 300}}}"#)
                #expect(applied.status == 200, "\(applied.text)")
                let held = try await resident()
                let cleared = try await service.faults("DELETE")
                #expect(cleared.status == 200)
                let after = try await resident()

                let mebibyte = 1024.0 * 1024.0
                #expect(held - before >= 280 * mebibyte, "resident grew by \((held - before) / mebibyte) MiB")
                #expect(held - after >= 280 * mebibyte, "resident fell by \((held - after) / mebibyte) MiB")
            }
        }

        @Test func eventLoopBlockDelaysTheLoopsTasks() async throws {
            try await ServiceProcess.with("AuthSvc") { service in
                func lag() async throws -> Double { try #require(try await service.scrape().value("nodejs_eventloop_lag_seconds")) }
                #expect(try await service.faults("PUT", body: #"{"faults": {"event_loop_block": {"block_ms": 600}}}"#).status == 200)
                // The monitor samples once a second; every sample waits behind a whole block.
                try await Task.sleep(for: .seconds(2.5))
                let blocked = try await lag()
                let health = try await HTTP.send("GET", service.url + "/health")
                #expect(try await service.faults("DELETE").status == 200)
                try await Task.sleep(for: .seconds(2.5))
                let unblocked = try await lag()

                #expect(blocked >= 0.5, "lag while blocked: \(blocked)")
                #expect(health.status == 200, "the service still answers")
                #expect(unblocked < 0.25, "lag once cleared: \(unblocked)")
            }
        }

        @Test func fdLeakHoldsItsShareOfTheDescriptorLimitUntilCleared() async throws {
            try await ServiceProcess.with("AuthSvc") { service in
                func descriptors() async throws -> (open: Double, limit: Double) {
                    let metrics = try await service.scrape()
                    return (try #require(metrics.value("process_open_fds")), try #require(metrics.value("process_max_fds")))
                }
                let before = try await descriptors()
                #expect(try await service.faults("PUT", body: #"{"faults": {"fd_leak": {"share": 0.3, "per_second": 100000}}}"#).status == 200)
                // The goal: 30% of the limit, or the leak's own ceiling under a very high limit.
                let goal = min(0.3 * before.limit, before.open + 65_536)
                var leaking = before
                let deadline = ContinuousClock.now + .seconds(10)
                while leaking.open < goal - 50, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(200))
                    leaking = try await descriptors()
                }
                try await Task.sleep(for: .milliseconds(500))
                let held = try await descriptors()
                let health = try await HTTP.send("GET", service.url + "/health")
                #expect(try await service.faults("DELETE").status == 200)
                let cleared = try await descriptors()

                #expect(held.open >= goal - 50, "open while leaking: \(held.open) of \(held.limit), goal \(goal)")
                #expect(held.open <= 0.3 * held.limit + 50, "the leak stops at its share: \(held.open) of \(held.limit)")
                #expect(health.status == 200, "the service still answers")
                #expect(cleared.open < before.open + 100, "open once cleared: \(cleared.open), before: \(before.open), held \(held.open) of \(held.limit)")
            }
        }

        @Test func cpuBurnKeepsTheAskedShareOfACoreBusy() async throws {
            try await ServiceProcess.with("AuthSvc") { service in
                func cpuRate(over interval: Duration) async throws -> Double {
                    let first = try #require(try await service.scrape().value("process_cpu_seconds_total"))
                    let start = ContinuousClock.now
                    try await Task.sleep(for: interval)
                    let second = try #require(try await service.scrape().value("process_cpu_seconds_total"))
                    return (second - first) / (ContinuousClock.now - start).seconds
                }
                let idle = try await cpuRate(over: .seconds(1.5))
                #expect(try await service.faults("PUT", body: #"{"faults": {"cpu_burn": {"share": 0.5}}}"#).status == 200)
                try await Task.sleep(for: .milliseconds(200))
                let burning = try await cpuRate(over: .seconds(3))
                #expect(try await service.faults("DELETE").status == 200)
                try await Task.sleep(for: .milliseconds(200))
                let stopped = try await cpuRate(over: .seconds(1.5))

                // Half a core asked: well above nothing and well below a whole core, also when
                // another process competes for the two cores.
                #expect((0.3...0.8).contains(burning - idle), "idle \(idle), burning \(burning)")
                #expect(stopped - idle < 0.2, "the thread stopped: \(stopped)")
            }
        }
    }
}
