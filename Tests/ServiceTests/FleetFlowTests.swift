import CloudBillTestSupport
import Foundation
import Testing

/// The whole fleet, through the gateway, against real PostgreSQL and Redis.
@Suite struct FleetFlowTests {
    @Test func tenantToReceiptWalksTheWholeFlowAndMovesTheMetrics() async throws {
        let fleet = try await Fleet.shared()
        let tenant = try await fleet.createTenant(webhook: true)

        let customer = try await fleet.call("POST", "/api/v1/customers", as: tenant, json: ["name": "Ada Lovelace", "email": "ada@example.com"])
        #expect(customer.status == 201)
        let customerID = try #require(customer["id"])

        let invoice = try await fleet.call("POST", "/api/v1/invoices", as: tenant, json: InvoiceRequest(customerID: customerID))
        #expect(invoice.status == 201, "\(invoice.text)")
        let invoiceID = try #require(invoice["id"])
        #expect(invoice["total_cents"] == "5330")  // 2 x 2500 + 6.6% tax on 5000

        let read = try await fleet.call("GET", "/api/v1/invoices/\(invoiceID)", as: tenant)
        #expect(read.status == 200 && read["status"] == "open")

        let payment = try await fleet.call(
            "POST", "/api/v1/payments", as: tenant, json: ["invoice_id": invoiceID, "payment_method": "pm_ok"],
            headers: ["Idempotency-Key": UUID().uuidString]
        )
        #expect(payment.status == 201, "\(payment.text)")
        #expect(payment["status"] == "succeeded")
        let paymentID = try #require(payment["id"])

        let paid = try await fleet.call("GET", "/api/v1/invoices/\(invoiceID)", as: tenant)
        #expect(paid["status"] == "paid", "the cached open copy was invalidated")
        // Read again: billing answers from Redis now (the read above cached the paid copy).
        let hitsBefore = try await fleet.scrape(port: fleet.ports.billing).value("redis_operations_total", ["operation": "hit", "tenant_id": tenant.id]) ?? 0
        let again = try await fleet.call("GET", "/api/v1/invoices/\(invoiceID)", as: tenant)
        #expect(again["status"] == "paid")

        let receipt = try await fleet.sink.waitForBody(containing: paymentID)
        #expect(receipt.contains(invoiceID) && receipt.contains("payment.receipt"))

        // The business counters moved for this tenant, in the services that did the work.
        let billing = try await fleet.scrape(port: fleet.ports.billing)
        #expect(billing.value("cloudbill_invoices_generated_total", ["tenant_id": tenant.id]) == 1)
        let payments = try await fleet.scrape(port: fleet.ports.payment)
        #expect(payments.value("cloudbill_payments_total", ["tenant_id": tenant.id]) == 1)
        #expect(payments.value("cloudbill_payments_succeeded_total", ["tenant_id": tenant.id]) == 1)
        try await eventually {
            let notifications = try await fleet.scrape(port: fleet.ports.notification)
            return notifications.value("cloudbill_notifications_sent_total", ["tenant_id": tenant.id, "notification_type": "webhook"]) == 1
        }
        // The HTTP metrics carry route templates and the tenant, never raw ids.
        let gateway = try await fleet.scrape(port: fleet.ports.gateway)
        #expect(gateway.value("http_requests_total", ["route": "/api/v1/invoices/{id}", "method": "GET", "status": "200", "tenant_id": tenant.id]) == 3)
        #expect(gateway.value("http_requests_total", ["route": "/api/v1/payments", "status": "201", "tenant_id": tenant.id]) == 1)
        #expect(!gateway.samples.contains { $0.labels.contains { $0.1.contains(invoiceID) } })
        #expect(billing.value("http_requests_total", ["route": "/internal/invoices/{id}/mark-paid", "tenant_id": tenant.id]) == 1)
        #expect(billing.value("redis_operations_total", ["operation": "hit", "tenant_id": tenant.id]) == hitsBefore + 1, "the third read was a cache hit")
        #expect(try #require(billing.value("db_query_duration_seconds_count", ["operation": "insert_invoice", "tenant_id": tenant.id])) == 1)
    }

    @Test func invoiceListingServesEachInvoiceAsItsOwnReadDoesFromTheDatabaseThenTheCache() async throws {
        let fleet = try await Fleet.shared()
        let tenant = try await fleet.createTenant()
        let customerID = try #require(try await fleet.call("POST", "/api/v1/customers", as: tenant, json: ["name": "Grace", "email": "grace@example.com"])["id"])
        struct Line: Encodable, Sendable { let description: String; let quantity: Int; let unit_amount_cents: Int }
        struct Body: Encodable, Sendable { let customer_id: String; let currency: String; let line_items: [Line] }
        var created: [String] = []
        for count in [1, 3, 2] {
            let lines = (0..<count).map { Line(description: "line \($0) of \(count)", quantity: $0 + 1, unit_amount_cents: 100 * count) }
            let invoice = try await fleet.call("POST", "/api/v1/invoices", as: tenant, json: Body(customer_id: customerID, currency: "EUR", line_items: lines))
            #expect(invoice.status == 201, "\(invoice.text)")
            created.append(try #require(invoice["id"]))
        }
        func hits() async throws -> Double {
            try await fleet.scrape(port: fleet.ports.billing).value("redis_operations_total", ["operation": "hit", "tenant_id": tenant.id]) ?? 0
        }
        func list() async throws -> [[String: Any]] {
            let listed = try await fleet.call("GET", "/api/v1/invoices?limit=10", as: tenant)
            #expect(listed.status == 200 && listed["count"] == "3", "\(listed.text)")
            return try #require(try listed.json()["data"] as? [[String: Any]])
        }
        let hitsBefore = try await hits()
        let fromDatabase = try await list()  // none cached yet: one query loads all three
        #expect(fromDatabase.map { $0["id"] as? String } == created.reversed().map { $0 }, "newest first")
        let lines = try #require(fromDatabase.first?["line_items"] as? [[String: Any]])
        #expect(lines.map { $0["description"] as? String } == ["line 0 of 2", "line 1 of 2"], "lines in the order sent")
        #expect(try await hits() == hitsBefore, "nothing was cached before the first listing")

        let fromCache = try await list()
        #expect(try await hits() == hitsBefore + 3, "the listing cached all three and the second read them in one MGET")
        for (listed, id) in zip(fromCache, created.reversed()) {
            let read = try await fleet.call("GET", "/api/v1/invoices/\(id)", as: tenant)
            #expect(NSDictionary(dictionary: try read.json()) == NSDictionary(dictionary: listed), "the listing and the read agree")
        }
        #expect(NSArray(array: fromDatabase) == NSArray(array: fromCache))
    }

    @Test func notificationsOfEachTypeAreDeliveredAndReadable() async throws {
        let fleet = try await Fleet.shared()
        let tenant = try await fleet.createTenant()
        let requests: [[String: String]] = [
            ["type": "email", "recipient": "ops@example.com", "subject": "Hello", "body": "Your invoice is ready."],
            ["type": "sms", "recipient": "+14155550100", "body": "Your code is 123456"],
            ["type": "webhook", "recipient": fleet.sink.url, "body": "ping \(tenant.id)"],
        ]
        for request in requests {
            let accepted = try await fleet.call("POST", "/api/v1/notifications", as: tenant, json: request)
            #expect(accepted.status == 202, "\(accepted.text)")
            let id = try #require(accepted["id"])
            try await eventually {
                try await fleet.call("GET", "/api/v1/notifications/\(id)", as: tenant)["status"] == "sent"
            }
        }
        _ = try await fleet.sink.waitForBody(containing: "ping \(tenant.id)")
    }
}

struct InvoiceRequest: Encodable, Sendable {
    struct Line: Encodable, Sendable {
        let description: String
        let quantity: Int
        let unit_amount_cents: Int
    }
    let customer_id: String
    let currency: String
    let tax_rate_bps: Int
    let line_items: [Line]

    init(customerID: String, currency: String = "EUR", quantity: Int = 2, unitAmountCents: Int = 2500) {
        customer_id = customerID
        self.currency = currency
        tax_rate_bps = 660
        line_items = [Line(description: "Pro plan", quantity: quantity, unit_amount_cents: unitAmountCents)]
    }
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("condition did not hold within \(timeout)")
}
