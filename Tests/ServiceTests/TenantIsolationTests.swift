import Foundation
import Testing

@Suite struct TenantIsolationTests {
    @Test func aTenantSeesNothingOfAnother() async throws {
        let fleet = try await Fleet.shared()
        let a = try await fleet.createTenant()
        let b = try await fleet.createTenant()

        let customer = try #require(try await fleet.call("POST", "/api/v1/customers", as: b, json: ["name": "B's customer", "email": "b@example.com"])["id"])
        let invoice = try #require(try await fleet.call("POST", "/api/v1/invoices", as: b, json: InvoiceRequest(customerID: customer))["id"])
        let declined = try await fleet.call(
            "POST", "/api/v1/payments", as: b, json: ["invoice_id": invoice, "payment_method": "pm_declined"],
            headers: ["Idempotency-Key": UUID().uuidString]
        )
        #expect(declined.status == 201 && declined["status"] == "failed" && declined["failure_reason"] == "card_declined")
        let payment = try #require(declined["id"])
        let notification = try #require(try await fleet.call(
            "POST", "/api/v1/notifications", as: b, json: ["type": "email", "recipient": "b@example.com", "body": "hi"]
        )["id"])

        for path in ["/api/v1/customers/\(customer)", "/api/v1/invoices/\(invoice)", "/api/v1/payments/\(payment)", "/api/v1/notifications/\(notification)"] {
            let response = try await fleet.call("GET", path, as: a)
            #expect(response.status == 404, "\(path) as another tenant: \(response.status)")
            #expect(response["error"] == "not_found")
            #expect(try await fleet.call("GET", path, as: b).status == 200, "\(path) as its own tenant")
        }
        // A cannot pay B's invoice, nor invoice B's customer.
        let stolen = try await fleet.call(
            "POST", "/api/v1/payments", as: a, json: ["invoice_id": invoice, "payment_method": "pm_ok"],
            headers: ["Idempotency-Key": UUID().uuidString]
        )
        #expect(stolen.status == 404)
        #expect(try await fleet.call("POST", "/api/v1/invoices", as: a, json: InvoiceRequest(customerID: customer)).status == 404, "another tenant's customer is not found, as its invoice is not")
        #expect(try await fleet.call("GET", "/api/v1/invoices/\(invoice)", as: b)["status"] == "open")
        #expect(try await fleet.count("payments", tenant: a.id) == 0)
        let listed = try await fleet.call("GET", "/api/v1/invoices?limit=100", as: a)
        #expect(listed["count"] == "0")
    }

    @Test func twentyConcurrentPaymentsWithOneKeyChargeOnce() async throws {
        let fleet = try await Fleet.shared()
        let tenant = try await fleet.createTenant()
        let customer = try #require(try await fleet.call("POST", "/api/v1/customers", as: tenant, json: ["name": "C", "email": "c@example.com"])["id"])
        let invoice = try #require(try await fleet.call("POST", "/api/v1/invoices", as: tenant, json: InvoiceRequest(customerID: customer))["id"])
        let key = UUID().uuidString
        let responses = try await withThrowingTaskGroup(of: HTTP.Response.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await fleet.call(
                        "POST", "/api/v1/payments", as: tenant, json: ["invoice_id": invoice, "payment_method": "pm_ok"],
                        headers: ["Idempotency-Key": key]
                    )
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(responses.allSatisfy { $0.status == 201 }, "\(responses.map(\.status))")
        #expect(Set(responses.compactMap { $0["id"] }).count == 1, "every replay names the one payment")
        #expect(responses.allSatisfy { $0["status"] == "succeeded" })
        #expect(try await fleet.count("payments", tenant: tenant.id) == 1)
        let metrics = try await fleet.scrape(port: fleet.ports.payment)
        #expect(metrics.value("cloudbill_payments_total", ["tenant_id": tenant.id]) == 1, "one charge reached the processor")

        // The same key with another body is a conflict; another key for the paid invoice too.
        let reused = try await fleet.call(
            "POST", "/api/v1/payments", as: tenant, json: ["invoice_id": invoice, "payment_method": "pm_declined"], headers: ["Idempotency-Key": key]
        )
        #expect(reused.status == 409 && reused["error"] == "idempotency_key_reused")
        let again = try await fleet.call(
            "POST", "/api/v1/payments", as: tenant, json: ["invoice_id": invoice, "payment_method": "pm_ok"], headers: ["Idempotency-Key": UUID().uuidString]
        )
        #expect(again.status == 409)
        #expect(try await fleet.count("payments", tenant: tenant.id) == 1)
    }

    @Test func rateLimitAnswers429WithRetryAfter() async throws {
        let fleet = try await Fleet.shared()
        let tenant = try await fleet.createTenant()
        // The test fleet allows 40 requests per second per tenant.
        let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for _ in 0..<120 {
                group.addTask {
                    let response = try await fleet.call("GET", "/api/v1/invoices?limit=1", as: tenant)
                    return (response.status, response.headers["retry-after"])
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let limited = statuses.filter { $0.0 == 429 }
        #expect(!limited.isEmpty, "no request was limited: \(statuses.map(\.0))")
        #expect(limited.allSatisfy { $0.1 == "1" })
        #expect(statuses.allSatisfy { $0.0 == 200 || $0.0 == 429 })
        let gateway = try await fleet.scrape(port: fleet.ports.gateway)
        #expect(gateway.value("http_requests_total", ["status": "429", "tenant_id": tenant.id]) == Double(limited.count))
    }
}
