import Foundation
import Testing

/// Bad input gets a clear 4xx with a JSON body, and leaves nothing behind.
@Suite struct BadRequestTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let method: String
        let path: String
        let body: String?
        var contentType = "application/json"
        var headers: [String: String] = [:]
        let status: Int
        var testDescription: String { name }
    }

    static let invoicePlaceholder = "INVOICE"
    static let customerPlaceholder = "CUSTOMER"

    static let cases: [Case] = [
        Case(name: "malformed JSON", method: "POST", path: "/api/v1/customers", body: "{\"name\": \"x\",", status: 400),
        Case(name: "JSON that is not an object", method: "POST", path: "/api/v1/customers", body: "[1,2,3]", status: 400),
        Case(name: "missing field", method: "POST", path: "/api/v1/customers", body: #"{"name":"x"}"#, status: 400),
        Case(name: "wrong type", method: "POST", path: "/api/v1/customers", body: #"{"name":42,"email":"a@b.co"}"#, status: 400),
        Case(name: "wrong content type", method: "POST", path: "/api/v1/customers", body: #"{"name":"x","email":"a@b.co"}"#, contentType: "text/plain", status: 415),
        Case(name: "oversized body", method: "POST", path: "/api/v1/customers",
             body: #"{"name":""# + String(repeating: "x", count: 300_000) + #"","email":"a@b.co"}"#, status: 413),
        Case(name: "empty name", method: "POST", path: "/api/v1/customers", body: #"{"name":"  ","email":"a@b.co"}"#, status: 422),
        Case(name: "bad email", method: "POST", path: "/api/v1/customers", body: #"{"name":"x","email":"not-an-email"}"#, status: 422),
        // The rules docs/openapi.yaml states as maxLength and patterns (checked by Schemathesis).
        Case(name: "email with a space around it", method: "POST", path: "/api/v1/customers", body: #"{"name":"x","email":" a@b.co"}"#, status: 422),
        Case(name: "email whose domain dot carries a modifier", method: "POST", path: "/api/v1/customers",
             body: #"{"name":"x","email":"a@b.\uD83C\uDFFBc"}"#, status: 201),
        Case(name: "name of 200 code points that are fewer characters", method: "POST", path: "/api/v1/customers",
             body: #"{"name":""# + String(repeating: #"e\u0301"#, count: 100) + #"","email":"a@b.co"}"#, status: 201),
        Case(name: "name of 201 code points", method: "POST", path: "/api/v1/customers",
             body: #"{"name":""# + String(repeating: #"e\u0301"#, count: 100) + #"e","email":"a@b.co"}"#, status: 422),
        Case(name: "name of only a byte order mark (whitespace to the patterns)", method: "POST", path: "/api/v1/customers",
             body: #"{"name":"\uFEFF","email":"a@b.co"}"#, status: 422),
        Case(name: "control character in the padding of a name", method: "POST", path: "/api/v1/customers",
             body: #"{"name":"Ada\u0000","email":"a@b.co"}"#, status: 422),
        Case(name: "unknown customer", method: "POST", path: "/api/v1/invoices",
             body: #"{"customer_id":"00000000-0000-4000-8000-000000000000","currency":"USD","line_items":[{"description":"x","quantity":1,"unit_amount_cents":5}]}"#, status: 404),
        Case(name: "empty limit", method: "GET", path: "/api/v1/invoices?limit=", body: nil, status: 422),
        Case(name: "empty status filter", method: "GET", path: "/api/v1/invoices?status=", body: nil, status: 422),
        Case(name: "sms number with a space", method: "POST", path: "/api/v1/notifications",
             body: #"{"type":"sms","recipient":" +14155550100","body":"y"}"#, status: 422),
        Case(name: "SQL injection is just a name", method: "POST", path: "/api/v1/customers",
             body: #"{"name":"x'); DROP TABLE customers; --","email":"bobby@example.com"}"#, status: 201),
        Case(name: "negative amount", method: "POST", path: "/api/v1/invoices",
             body: #"{"customer_id":"CUSTOMER","currency":"USD","line_items":[{"description":"x","quantity":1,"unit_amount_cents":-5}]}"#, status: 422),
        Case(name: "huge amount", method: "POST", path: "/api/v1/invoices",
             body: #"{"customer_id":"CUSTOMER","currency":"USD","line_items":[{"description":"x","quantity":1000000,"unit_amount_cents":9999999999}]}"#, status: 422),
        Case(name: "amount beyond Int64", method: "POST", path: "/api/v1/invoices",
             body: #"{"customer_id":"CUSTOMER","currency":"USD","line_items":[{"description":"x","quantity":1,"unit_amount_cents":99999999999999999999999}]}"#, status: 400),
        Case(name: "zero quantity", method: "POST", path: "/api/v1/invoices",
             body: #"{"customer_id":"CUSTOMER","currency":"USD","line_items":[{"description":"x","quantity":0,"unit_amount_cents":5}]}"#, status: 422),
        Case(name: "unknown currency", method: "POST", path: "/api/v1/invoices",
             body: #"{"customer_id":"CUSTOMER","currency":"XYZ","line_items":[{"description":"x","quantity":1,"unit_amount_cents":5}]}"#, status: 422),
        Case(name: "no line items", method: "POST", path: "/api/v1/invoices",
             body: #"{"customer_id":"CUSTOMER","currency":"USD","line_items":[]}"#, status: 422),
        Case(name: "invalid customer UUID", method: "POST", path: "/api/v1/invoices",
             body: #"{"customer_id":"1' OR '1'='1","currency":"USD","line_items":[{"description":"x","quantity":1,"unit_amount_cents":5}]}"#, status: 422),
        Case(name: "invalid UUID in path", method: "GET", path: "/api/v1/invoices/not-a-uuid", body: nil, status: 404),
        Case(name: "bad status filter", method: "GET", path: "/api/v1/invoices?status=drop%20table", body: nil, status: 422),
        Case(name: "bad limit", method: "GET", path: "/api/v1/invoices?limit=100000", body: nil, status: 422),
        Case(name: "payment without idempotency key", method: "POST", path: "/api/v1/payments",
             body: #"{"invoice_id":"INVOICE","payment_method":"pm_ok"}"#, status: 400),
        Case(name: "unknown payment method", method: "POST", path: "/api/v1/payments",
             body: #"{"invoice_id":"INVOICE","payment_method":"pm_free_money"}"#, headers: ["Idempotency-Key": "k-unknown-method"], status: 422),
        Case(name: "unknown notification type", method: "POST", path: "/api/v1/notifications",
             body: #"{"type":"pigeon","recipient":"x","body":"y"}"#, status: 422),
        Case(name: "webhook to a host not allowed", method: "POST", path: "/api/v1/notifications",
             body: #"{"type":"webhook","recipient":"http://169.254.169.254/latest","body":"y"}"#, status: 422),
        Case(name: "sms to a non-number", method: "POST", path: "/api/v1/notifications",
             body: #"{"type":"sms","recipient":"call me","body":"y"}"#, status: 422),
        Case(name: "header injection in idempotency key", method: "POST", path: "/api/v1/payments",
             body: #"{"invoice_id":"INVOICE","payment_method":"pm_ok"}"#, headers: ["Idempotency-Key": "a b\tc"], status: 400),
    ]

    @Test(arguments: cases)
    func badInputIsRefusedAndChangesNothing(_ testCase: Case) async throws {
        let fleet = try await Fleet.shared()
        let tenant = try await fleet.createTenant()
        let customer = try #require(try await fleet.call("POST", "/api/v1/customers", as: tenant, json: ["name": "C", "email": "c@example.com"])["id"])
        let invoice = try #require(try await fleet.call("POST", "/api/v1/invoices", as: tenant, json: InvoiceRequest(customerID: customer))["id"])
        let tables = ["customers", "invoices", "payments", "notifications"]
        var before: [String: Int] = [:]
        for table in tables { before[table] = try await fleet.count(table, tenant: tenant.id) }

        let body = testCase.body?.replacingOccurrences(of: Self.customerPlaceholder, with: customer)
            .replacingOccurrences(of: Self.invoicePlaceholder, with: invoice)
        var headers = testCase.headers
        headers["Authorization"] = "Bearer \(tenant.token)"
        headers["Content-Type"] = testCase.contentType
        let response = try await HTTP.send(testCase.method, fleet.gatewayURL + testCase.path, rawBody: body.map { Array($0.utf8) }, headers: headers)
        #expect(response.status == testCase.status, "\(testCase.name): \(response.status) \(response.text.prefix(300))")
        if testCase.status >= 400 {
            let error = try response.json()
            #expect(error["error"] is String && error["message"] is String && error["request_id"] is String, "\(response.text.prefix(300))")
            for table in tables {
                #expect(try await fleet.count(table, tenant: tenant.id) == before[table], "\(table) changed")
            }
        }
        #expect(try await fleet.call("GET", "/api/v1/invoices/\(invoice)", as: tenant)["status"] == "open")
    }

    @Test func forgedExpiredAndMissingTokensGet401() async throws {
        let fleet = try await Fleet.shared()
        let tenant = try await fleet.createTenant()
        let forged = "cbt_" + String(repeating: "ab", count: 32)
        for authorization in [nil, "Bearer", "Bearer \(forged)", "Basic dXNlcjpwYXNz", "Bearer \(tenant.token)x"] {
            var headers: [String: String] = [:]
            if let authorization { headers["Authorization"] = authorization }
            let response = try await HTTP.send("GET", fleet.gatewayURL + "/api/v1/invoices", headers: headers)
            #expect(response.status == 401, "\(authorization ?? "no header")")
            #expect(response["error"] != nil)
        }
        // A token that expires two seconds from now, stored as Auth stores tokens: accepted
        // now, refused once it has expired, whatever the caches hold.
        let expiring = "cbt_" + String(repeating: "cd", count: 32)
        let hash = try await fleet.servers.database.query("test_hash", tenant: nil, "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", [expiring])[0].decode(String.self, at: 0)
        try await fleet.servers.database.execute(
            "test_expired", tenant: nil,
            "INSERT INTO access_tokens (token_hash, tenant_id, api_key_id, expires_at) SELECT $1, tenant_id, id, now() + interval '2 seconds' FROM api_keys WHERE tenant_id = $2",
            [hash, tenant.id]
        )
        #expect(try await HTTP.send("GET", fleet.gatewayURL + "/api/v1/invoices", headers: ["Authorization": "Bearer \(expiring)"]).status == 200)
        try await Task.sleep(for: .seconds(2.5))
        #expect(try await HTTP.send("GET", fleet.gatewayURL + "/api/v1/invoices", headers: ["Authorization": "Bearer \(expiring)"]).status == 401)
        // A bad API key gets no token.
        let noToken = try await HTTP.send("POST", fleet.gatewayURL + "/api/v1/auth/token", json: ["api_key": tenant.apiKey + "0"])
        #expect(noToken.status == 401)
        // Revoked tokens stop working.
        #expect(try await fleet.call("POST", "/api/v1/auth/revoke", as: tenant).status == 204)
        #expect(try await fleet.call("GET", "/api/v1/invoices", as: tenant).status == 401)
    }

    @Test func aSpoofedTenantHeaderSentStraightToAServiceIsRefused() async throws {
        let fleet = try await Fleet.shared()
        let tenant = try await fleet.createTenant()
        for port in [fleet.ports.billing, fleet.ports.payment, fleet.ports.notification] {
            for headers in [["X-CloudBill-Tenant": tenant.id], ["X-CloudBill-Tenant": tenant.id, "X-CloudBill-Internal-Token": "guess"]] {
                let response = try await HTTP.send("GET", "http://127.0.0.1:\(port)/api/v1/invoices", headers: headers)
                #expect(response.status == 401 || response.status == 404, "port \(port): \(response.status)")
                let created = try await HTTP.send(
                    "POST", "http://127.0.0.1:\(port)/api/v1/customers", json: ["name": "x", "email": "x@example.com"], headers: headers
                )
                #expect(created.status == 401 || created.status == 404)
            }
        }
        #expect(try await fleet.count("customers", tenant: tenant.id) == 0)
        let admin = try await HTTP.send("POST", fleet.gatewayURL + "/admin/tenants", json: ["name": "x"], headers: ["X-Admin-Token": "wrong"])
        #expect(admin.status == 401)
    }

    @Test func aKnownPathAskedWithAnotherMethodGets405WithAllow() async throws {
        let fleet = try await Fleet.shared()
        let tenant = try await fleet.createTenant()
        for (method, path, allow) in [
            ("TRACE", "/api/v1/invoices", "GET, POST"), ("DELETE", "/api/v1/invoices/0b9c2a40-8a3e-4a4e-9a40-2f1d0c7a9b11", "GET"),
            ("PUT", "/api/v1/payments", "POST"), ("PATCH", "/health", "GET"), ("POST", "/metrics", "GET"),
        ] {
            let response = try await fleet.call(method, path, as: tenant)
            #expect(response.status == 405, "\(method) \(path): \(response.status) \(response.text)")
            #expect(response.headers["allow"] == allow, "\(method) \(path)")
            #expect(response["error"] == "method_not_allowed" || response.text.contains("method_not_allowed"), "\(response.text)")
        }
        // An unknown path is still 404, and a known method on a known path unaffected.
        #expect(try await fleet.call("TRACE", "/api/v1/nothing-here", as: tenant).status == 404)
        #expect(try await fleet.call("GET", "/api/v1/invoices", as: tenant).status == 200)
    }
}
