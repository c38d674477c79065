import CloudBillInstrumentation
import CloudBillKit
import CloudBillTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

private let internalToken = "test-internal-token"

/// A service with one templated route, built the way every CloudBill service is.
private func makeService(tenantLimit: Int = 1000) throws -> ServiceApplication {
    let service = try ServiceApplication(
        name: "middleware-test",
        configuration: .init(port: 0, tenantLabelLimit: tenantLimit, internalToken: internalToken, adminToken: "middleware-test-admin-token"),
        storage: .none
    )
    service.router.get("/api/v1/invoices/{id}") { _, context in
        ["id": try context.parameters.require("id")]
    }
    service.router.post("/api/v1/fail") { _, _ -> String in
        throw APIError(.unprocessableContent, "amount must be positive")
    }
    return service
}

private func scrape(_ client: some TestClientProtocol) async throws -> Exposition {
    try await client.execute(uri: "/metrics", method: .get) { response in
        Exposition(String(buffer: response.body))
    }
}

/// The `http_requests_total` samples of the traffic a test sent: every sample except the
/// probe series that each service prepares at 0 before any request.
private func traffic(_ metrics: Exposition) -> [Exposition.Sample] {
    metrics.samples.filter { $0.name == "http_requests_total" && !ServiceApplication.probeRoutes.contains($0["route"] ?? "") }
}

private func asTenant(_ tenant: String, token: String = internalToken) -> HTTPFields {
    [InternalIdentity.tenantHeader: tenant, InternalIdentity.tokenHeader: token]
}

@Suite struct HTTPMetricsMiddlewareTests {
    @Test func routeLabelIsTheTemplateNotTheRawPath() async throws {
        try await makeService().makeApplication().test(.router) { client in
            for id in ["inv_1", "inv_2", "inv_3"] {
                try await client.execute(uri: "/api/v1/invoices/\(id)", method: .get) { #expect($0.status == .ok) }
            }
            let metrics = try await scrape(client)
            let requests = traffic(metrics)
            #expect(requests.map { $0["route"] } == ["/api/v1/invoices/{id}"])
            #expect(requests.first?.value == 3)
            #expect(!metrics.samples.contains { $0.labels.contains { $0.1.contains("inv_") } })
            #expect(metrics.value("http_request_duration_seconds_count", ["route": "/api/v1/invoices/{id}"]) == 3)
            #expect(metrics.value("http_response_size_bytes_count", ["route": "/api/v1/invoices/{id}"]) == 3)
        }
    }

    @Test func unmatchedRequestsShareOneSeriesAndGetJSON404() async throws {
        try await makeService().makeApplication().test(.router) { client in
            for path in ["/nope", "/admin/../etc/passwd", "/\(UUID().uuidString)", "/api/v1/invoices"] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .notFound)
                    let body = try JSONDecoder().decode([String: String].self, from: Data(buffer: response.body))
                    #expect(body["error"] == "not_found")
                    #expect(body["request_id"]?.isEmpty == false)
                }
            }
            let metrics = try await scrape(client)
            let requests = traffic(metrics)
            #expect(requests.count == 1)
            #expect(requests.first?["route"] == "__unmatched__")
            #expect(requests.first?["status"] == "404")
            #expect(requests.first?.value == 4)
        }
    }

    @Test func inventedMethodsAreRecordedAsOther() async throws {
        try await makeService().makeApplication().test(.router) { client in
            for method in ["PURGE", "XYZZY", "BREW"] {
                try await client.execute(uri: "/nope", method: HTTPRequest.Method(method)!) { #expect($0.status == .notFound) }
            }
            let metrics = try await scrape(client)
            #expect(traffic(metrics).map { $0["method"] } == ["OTHER"])
        }
    }

    @Test func tenantComesFromTheGatewayOnly() async throws {
        try await makeService().makeApplication().test(.router) { client in
            try await client.execute(uri: "/api/v1/invoices/1", method: .get, headers: asTenant("acme")) { _ in }
            // A tenant header without the internal secret, or with a wrong one, is not believed.
            try await client.execute(uri: "/api/v1/invoices/1", method: .get, headers: [InternalIdentity.tenantHeader: "mallory"]) { _ in }
            try await client.execute(uri: "/api/v1/invoices/1", method: .get, headers: asTenant("mallory", token: "guess")) { _ in }
            // A malformed tenant is not believed either, even with the secret.
            try await client.execute(uri: "/api/v1/invoices/1", method: .get, headers: asTenant("Robert'); DROP TABLE")) { _ in }
            let metrics = try await scrape(client)
            let tenants = Set(traffic(metrics).compactMap { $0["tenant_id"] })
            #expect(tenants == ["acme", "anonymous"])
            #expect(metrics.value("http_requests_total", ["route": "/api/v1/invoices/{id}", "tenant_id": "anonymous"]) == 3)
        }
    }

    @Test func tenantsPastTheLimitAreFoldedIntoOther() async throws {
        try await makeService(tenantLimit: 2).makeApplication().test(.router) { client in
            for tenant in ["t1", "t2", "t3", "t4", "t5", "t1"] {
                try await client.execute(uri: "/api/v1/invoices/1", method: .get, headers: asTenant(tenant)) { _ in }
            }
            let metrics = try await scrape(client)
            let tenants = Set(traffic(metrics).compactMap { $0["tenant_id"] })
            #expect(tenants == ["t1", "t2", "__other__"])
            #expect(metrics.value("http_requests_total", ["tenant_id": "__other__"]) == 3)
            #expect(metrics.value("http_request_duration_seconds_count", ["tenant_id": "__other__"]) == 3)
            #expect(metrics.value("cloudbill_metric_tenants_folded_total", ["family": "http_requests_total"]) == 3)
            #expect(metrics.value("cloudbill_metric_tenants_folded_total", ["family": "http_request_duration_seconds"]) == 3)
        }
    }

    @Test func aRequestWithoutAnIDGetsADistinctVersion4UUID() async throws {
        try await makeService().makeApplication().test(.router) { client in
            var seen: Set<String> = []
            for _ in 0..<50 {
                try await client.execute(uri: "/health", method: .get) { response in
                    let id = try #require(response.headers[RequestIDMiddleware.header])
                    #expect(id == id.lowercased())
                    let parsed = try #require(UUID(uuidString: id))
                    #expect(parsed.uuidString.lowercased() == id)
                    let bytes = parsed.uuid
                    #expect(bytes.6 >> 4 == 4)
                    #expect(bytes.8 >> 6 == 0b10)
                    seen.insert(id)
                }
            }
            #expect(seen.count == 50)
        }
    }

    @Test func errorsAreJSONWithTheirStatusAndCounted() async throws {
        try await makeService().makeApplication().test(.router) { client in
            try await client.execute(uri: "/api/v1/fail", method: .post, headers: [RequestIDMiddleware.header: "req-42"]) { response in
                #expect(response.status == .unprocessableContent)
                #expect(response.headers[RequestIDMiddleware.header] == "req-42")
                let body = try JSONDecoder().decode([String: String].self, from: Data(buffer: response.body))
                #expect(body == ["error": "unprocessable_entity", "message": "amount must be positive", "request_id": "req-42"])
            }
            let metrics = try await scrape(client)
            #expect(metrics.value("http_requests_total", ["route": "/api/v1/fail", "status": "422"]) == 1)
        }
    }

    @Test func scrapesAreNotCountedAsTraffic() async throws {
        try await makeService().makeApplication().test(.router) { client in
            _ = try await scrape(client)
            let metrics = try await scrape(client)
            #expect(traffic(metrics).isEmpty)
            #expect(!metrics.samples.contains { $0["route"] == "/metrics" })
        }
    }

    @Test func probeSeriesStartAtZeroAndCountProbes() async throws {
        try await makeService().makeApplication().test(.router) { client in
            let before = try await scrape(client)
            for route in ServiceApplication.probeRoutes {
                let labels = ["method": "GET", "route": route, "status": "200", "tenant_id": "anonymous"]
                #expect(before.value("http_requests_total", labels) == 0)
                #expect(before.value("http_request_duration_seconds_count", ["route": route, "tenant_id": "anonymous"]) == 0)
            }
            try await client.execute(uri: "/health", method: .get) { #expect($0.status == .ok) }
            let after = try await scrape(client)
            #expect(after.value("http_requests_total", ["route": "/health", "status": "200"]) == 1)
            #expect(after.value("http_requests_total", ["route": "/ready", "status": "200"]) == 0)
        }
    }

    @Test func requestAndResponseSizesAreMeasured() async throws {
        try await makeService().makeApplication().test(.router) { client in
            let body = ByteBuffer(string: String(repeating: "x", count: 500))
            try await client.execute(uri: "/api/v1/fail", method: .post, body: body) { _ in }
            let metrics = try await scrape(client)
            #expect(metrics.value("http_request_size_bytes_sum", ["route": "/api/v1/fail"]) == 500)
            let responseBytes = try #require(metrics.value("http_response_size_bytes_sum", ["route": "/api/v1/fail"]))
            #expect(responseBytes > 50 && responseBytes < 200)
        }
    }
}
