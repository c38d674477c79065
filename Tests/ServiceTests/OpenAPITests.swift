import Foundation
import Testing
import Yams

/// `docs/openapi.yaml` stays true: every documented operation is routed by the gateway and
/// answers with a documented status and the documented required fields.
@Suite struct OpenAPITests {
    /// The parsed document; read afresh by each caller, as `[String: Any]` is not Sendable.
    static var document: [String: Any] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/openapi.yaml")
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        return ((try? Yams.load(yaml: text)) as? [String: Any]) ?? [:]
    }

    /// The documented operations, as "METHOD /path/{template}".
    static var operations: [String] {
        let paths = document["paths"] as? [String: [String: Any]] ?? [:]
        return paths.flatMap { path, methods in methods.keys.map { "\($0.uppercased()) \(path)" } }.sorted()
    }

    static func resolve(_ node: Any?, in document: [String: Any]) -> [String: Any]? {
        guard let object = node as? [String: Any] else { return nil }
        guard let ref = object["$ref"] as? String else { return object }
        var current: Any? = document
        for key in ref.dropFirst(2).split(separator: "/") { current = (current as? [String: Any])?[String(key)] }
        return resolve(current, in: document)
    }

    /// Walks every documented operation through the gateway and records its answer.
    static func exercise(_ fleet: Fleet) async throws -> [String: HTTP.Response] {
        var answers: [String: HTTP.Response] = [:]
        let created = try await HTTP.send(
            "POST", fleet.gatewayURL + "/admin/tenants", json: ["name": "OpenAPI"], headers: ["X-Admin-Token": fleet.configuration.adminToken]
        )
        answers["POST /admin/tenants"] = created
        let key = try #require(created["api_key"])
        let token = try await HTTP.send("POST", fleet.gatewayURL + "/api/v1/auth/token", json: ["api_key": key])
        answers["POST /api/v1/auth/token"] = token
        let tenant = Fleet.Tenant(id: try #require(token["tenant_id"]), apiKey: key, token: try #require(token["access_token"]))

        let customer = try await fleet.call("POST", "/api/v1/customers", as: tenant, json: ["name": "N", "email": "n@example.com"])
        answers["POST /api/v1/customers"] = customer
        let customerID = try #require(customer["id"])
        answers["GET /api/v1/customers/{id}"] = try await fleet.call("GET", "/api/v1/customers/\(customerID)", as: tenant)
        let invoice = try await fleet.call("POST", "/api/v1/invoices", as: tenant, json: InvoiceRequest(customerID: customerID))
        answers["POST /api/v1/invoices"] = invoice
        let invoiceID = try #require(invoice["id"])
        answers["GET /api/v1/invoices/{id}"] = try await fleet.call("GET", "/api/v1/invoices/\(invoiceID)", as: tenant)
        answers["GET /api/v1/invoices"] = try await fleet.call("GET", "/api/v1/invoices?status=open&limit=5", as: tenant)
        let payment = try await fleet.call(
            "POST", "/api/v1/payments", as: tenant, json: ["invoice_id": invoiceID, "payment_method": "pm_ok"],
            headers: ["Idempotency-Key": UUID().uuidString]
        )
        answers["POST /api/v1/payments"] = payment
        answers["GET /api/v1/payments/{id}"] = try await fleet.call("GET", "/api/v1/payments/\(try #require(payment["id"]))", as: tenant)
        let notification = try await fleet.call(
            "POST", "/api/v1/notifications", as: tenant, json: ["type": "email", "recipient": "n@example.com", "body": "hello"]
        )
        answers["POST /api/v1/notifications"] = notification
        answers["GET /api/v1/notifications/{id}"] = try await fleet.call("GET", "/api/v1/notifications/\(try #require(notification["id"]))", as: tenant)
        answers["POST /api/v1/auth/revoke"] = try await fleet.call("POST", "/api/v1/auth/revoke", as: tenant)
        return answers
    }

    @Test func everyDocumentedOperationAnswersAsDocumented() async throws {
        #expect(Self.operations.count == 12, "\(Self.operations)")
        let fleet = try await Fleet.shared()
        let answers = try await Self.exercise(fleet)
        #expect(Set(answers.keys) == Set(Self.operations), "exercised operations differ from the document")
        let document = Self.document
        let paths = document["paths"] as? [String: [String: Any]] ?? [:]
        for operation in Self.operations {
            let parts = operation.split(separator: " ")
            let spec = try #require(paths[String(parts[1])]?[parts[0].lowercased()] as? [String: Any])
            let responses = try #require(spec["responses"] as? [String: Any])
            let answer = try #require(answers[operation])
            #expect(responses[String(answer.status)] != nil, "\(operation) answered \(answer.status), which is not documented")
            guard (200..<300).contains(answer.status), !answer.text.isEmpty else { continue }
            let response = Self.resolve(responses[String(answer.status)], in: document)
            let schema = Self.resolve(((response?["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"], in: document)
            let required = schema?["required"] as? [String] ?? []
            let body = try answer.json()
            for field in required {
                #expect(body[field] != nil, "\(operation): required field '\(field)' missing from \(answer.text.prefix(200))")
            }
            let documented = Set((schema?["properties"] as? [String: Any] ?? [:]).keys)
            #expect(Set(body.keys).isSubset(of: documented), "\(operation): undocumented fields \(Set(body.keys).subtracting(documented))")
        }
        // The gateway routed each one by its template; none fell through to __unmatched__.
        let metrics = try await fleet.scrape(port: fleet.ports.gateway)
        let routes = Set(metrics.samples.filter { $0.name == "http_requests_total" }.compactMap { $0["route"] })
        for operation in Self.operations {
            #expect(routes.contains(String(operation.split(separator: " ")[1])), "\(operation) is not a gateway route")
        }
    }
}
