@testable import AuthSvc
@testable import BillingSvc
import CloudBillInstrumentation
import CloudBillKit
import CloudBillTestSupport
import Foundation
@testable import Gateway
import Hummingbird
import HummingbirdTesting
@testable import NotifySvc
@testable import PaymentSvc
import Testing

/// One of the five services, built through its own `buildApplication`.
enum FleetService: String, CaseIterable, CustomTestStringConvertible {
    case gateway = "api-gateway"
    case auth = "auth-service"
    case billing = "billing-service"
    case payment = "payment-service"
    case notification = "notification-service"

    var testDescription: String { rawValue }

    /// The `service` label the module declares for itself.
    var declaredName: String {
        switch self {
        case .gateway: Gateway.serviceName
        case .auth: AuthSvc.serviceName
        case .billing: BillingSvc.serviceName
        case .payment: PaymentSvc.serviceName
        case .notification: NotifySvc.serviceName
        }
    }

    /// The application on an ephemeral loopback port, against the test servers.
    func application(_ configuration: ServiceConfiguration) throws -> any ApplicationProtocol {
        switch self {
        case .gateway: return try Gateway.buildApplication(configuration: configuration)
        case .auth: return try AuthSvc.buildApplication(configuration: configuration)
        case .billing: return try BillingSvc.buildApplication(configuration: configuration)
        case .payment: return try PaymentSvc.buildApplication(configuration: configuration)
        case .notification: return try NotifySvc.buildApplication(configuration: configuration)
        }
    }
}

/// Runs `body` against the service listening on a real socket, alone: in a database apart from
/// the fleet's, so its background workers never take the fleet's queued work.
func withLiveService<Value: Sendable>(
    _ service: FleetService,
    _ body: @Sendable (any TestClientProtocol) async throws -> Value
) async throws -> Value {
    func run<App: ApplicationProtocol>(_ app: App) async throws -> Value {
        try await app.test(.live) { client in try await body(client) }
    }
    return try await run(service.application(try await TestEnvironment.configuration(standalone: true)))
}

func scrape(_ client: some TestClientProtocol) async throws -> (Exposition, String) {
    try await client.execute(uri: "/metrics", method: .get) { response in
        #expect(response.status == .ok)
        #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = String(buffer: response.body)
        return (Exposition(text), text)
    }
}

@Suite struct FleetScrapeTests {
    /// Every documented family the service records is in its very first scrape, except the
    /// business counters, whose every series belongs to a tenant: they appear with the
    /// tenant's first action (failure and success series together), never for an invented one.
    @Test(arguments: FleetService.allCases)
    func firstScrapeShowsEveryFamilyTheServiceRecords(_ service: FleetService) async throws {
        let expected = Set(
            (MetricCatalog.documented + MetricCatalog.processExtras).map(\.name).filter { name in
                if name.hasPrefix("cloudbill_") { return false }
                if name.hasPrefix("db_") { return service != .gateway }
                return true
            }
        )
        try await withLiveService(service) { client in
            let (_, text) = try await scrape(client)
            let present = Set(text.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("# TYPE ") else { return nil }
                return line.split(separator: " ").dropFirst(2).first.map(String.init)
            })
            #expect(expected.subtracting(present).isEmpty, "missing from the first scrape: \(expected.subtracting(present).sorted())")
            for line in text.split(separator: "\n") where line.hasPrefix("redis_errors_total{") || line.hasPrefix("db_errors_total{") {
                #expect(line.hasSuffix(" 0"), "\(line)")
            }
        }
    }

    @Test(arguments: FleetService.allCases)
    func serviceAnswersHealthWithItsName(_ service: FleetService) async throws {
        #expect(service.declaredName == service.rawValue)
        try await withLiveService(service) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                let body = try JSONDecoder().decode([String: String].self, from: Data(buffer: response.body))
                #expect(body == ["status": "ok", "service": service.rawValue])
            }
        }
    }

    @Test(arguments: FleetService.allCases)
    func scrapeShowsItsServiceLabelAndEveryRuntimeAndHTTPFamily(_ service: FleetService) async throws {
        try await withLiveService(service) { client in
            try await client.execute(uri: "/health", method: .get) { #expect($0.status == .ok) }
            let (metrics, _) = try await scrape(client)
            #expect(!metrics.samples.isEmpty)
            #expect(metrics.samples.allSatisfy { $0["service"] == service.rawValue })
            let families = MetricCatalog.runtime + [
                MetricCatalog.httpRequestsTotal, MetricCatalog.httpRequestDuration,
                MetricCatalog.httpRequestSize, MetricCatalog.httpResponseSize,
            ]
            for family in families {
                #expect(metrics.types[family.name] == family.type.rawValue, "\(service.rawValue) exposes \(family.name)")
                #expect(!metrics.samples(of: family.name).isEmpty, "\(service.rawValue) has samples of \(family.name)")
            }
            #expect(metrics.value("http_requests_total", ["route": "/health", "status": "200", "tenant_id": "anonymous"]) == 1)
            #expect(try #require(metrics.value("process_resident_memory_bytes", [:])) > 0)
        }
    }

    @Test(arguments: FleetService.allCases)
    func scrapePassesPromtoolCheckMetrics(_ service: FleetService) async throws {
        try await withLiveService(service) { client in
            try await client.execute(uri: "/health", method: .get) { _ in }
            try await client.execute(uri: "/no/such/route", method: .get) { #expect($0.status == .notFound) }
            let (_, text) = try await scrape(client)
            let result = try Promtool.checkMetrics(text)
            #expect(result.exitCode == 0, "promtool: \(result.output)")
            #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "promtool findings: \(result.output)")
        }
    }
}
