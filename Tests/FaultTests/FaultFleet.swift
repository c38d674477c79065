import AsyncHTTPClient
@testable import AuthSvc
@testable import BillingSvc
import CloudBillInstrumentation
import CloudBillKit
import CloudBillStorage
import CloudBillTestSupport
import Foundation
@testable import Gateway
import Hummingbird
import NIOCore
@testable import NotifySvc
@testable import PaymentSvc

/// The five services in this process on loopback ports, each built through its own
/// `buildApplication`, against a private PostgreSQL and Redis; started once for the suite.
final class FaultFleet: Sendable {
    static let adminToken = "fault-tests-admin-token"
    static let internalToken = "fault-tests-internal-token"

    let ports: [String: Int]
    let postgres: PostgresServer
    let redis: RedisServer
    /// The tests' own pool on the service database, as superuser, to look inside PostgreSQL.
    let database: ConnectionPool

    private init(ports: [String: Int], postgres: PostgresServer, redis: RedisServer, database: ConnectionPool) {
        self.ports = ports
        self.postgres = postgres
        self.redis = redis
        self.database = database
    }

    private static let started = Task<FaultFleet, any Error> {
        let postgres = try await PostgresServer.shared()
        let redis = try await RedisServer.shared()
        try? await postgres.psql("CREATE DATABASE cloudbill_faults")
        let databaseURL = "host=127.0.0.1 port=\(postgres.port) dbname=cloudbill_faults user=postgres"
        let ports = [
            "api-gateway": try freePort(), "auth-service": try freePort(), "billing-service": try freePort(),
            "payment-service": try freePort(), "notification-service": try freePort(),
        ]
        func configuration(_ service: String) -> ServiceConfiguration {
            ServiceConfiguration(
                port: ports[service]!, logLevel: "warning", faultsEnabled: true, internalToken: internalToken, adminToken: adminToken,
                databaseURL: databaseURL, databasePoolSize: 8, redisURL: "redis://127.0.0.1:\(redis.port)",
                authURL: "http://127.0.0.1:\(ports["auth-service"]!)",
                billingURL: "http://127.0.0.1:\(ports["billing-service"]!)",
                paymentURL: "http://127.0.0.1:\(ports["payment-service"]!)",
                notificationURL: "http://127.0.0.1:\(ports["notification-service"]!)"
            )
        }
        // A service of the fleet that stops (one of its services returned or threw) leaves
        // the tests after it with "connection refused": say which one, and why.
        func launch(_ name: String, _ app: some ApplicationProtocol) {
            Task.detached {
                do {
                    try await app.run()
                    FileHandle.standardError.write(Data("FaultFleet: \(name) stopped\n".utf8))
                } catch {
                    FileHandle.standardError.write(Data("FaultFleet: \(name) failed: \(error)\n".utf8))
                }
            }
        }
        // One at a time: the services share the migration table.
        launch("auth-service", try AuthSvc.buildApplication(configuration: configuration("auth-service")))
        try await waitUntilReady(port: ports["auth-service"]!)
        launch("billing-service", try BillingSvc.buildApplication(configuration: configuration("billing-service")))
        try await waitUntilReady(port: ports["billing-service"]!)
        launch("payment-service", try PaymentSvc.buildApplication(configuration: configuration("payment-service")))
        try await waitUntilReady(port: ports["payment-service"]!)
        launch("notification-service", try NotifySvc.buildApplication(configuration: configuration("notification-service")))
        try await waitUntilReady(port: ports["notification-service"]!)
        launch("api-gateway", try Gateway.buildApplication(configuration: configuration("api-gateway")))
        try await waitUntilReady(port: ports["api-gateway"]!)
        let database = ConnectionPool(
            configuration: .init(connectionString: databaseURL, maximumConnections: 2),
            metrics: ServiceMetrics(service: "fault-tests").database
        )
        return FaultFleet(ports: ports, postgres: postgres, redis: redis, database: database)
    }

    static func shared() async throws -> FaultFleet { try await started.value }

    static func waitUntilReady(port: Int, timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let response = try? await HTTP.send("GET", "http://127.0.0.1:\(port)/ready"), response.status == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("service on port \(port) did not become ready")
    }

    func url(_ service: String, _ path: String) -> String { "http://127.0.0.1:\(ports[service]!)\(path)" }

    // MARK: Calls

    /// Calls a service's API as `tenant`, as the gateway would.
    func call(_ service: String, _ method: String, _ path: String, tenant: String, json: (any Encodable & Sendable)? = nil, headers: [String: String] = [:]) async throws -> HTTP.Response {
        var headers = headers
        headers["X-CloudBill-Tenant"] = tenant
        headers["X-CloudBill-Internal-Token"] = Self.internalToken
        return try await HTTP.send(method, url(service, path), json: json, headers: headers)
    }

    /// Calls the admin fault API of `service` with the admin token.
    func faults(_ service: String, _ method: String, _ path: String = "", body: String? = nil) async throws -> HTTP.Response {
        try await HTTP.send(
            method, url(service, "/admin/faults" + path), rawBody: body.map { Array($0.utf8) },
            headers: ["X-Admin-Token": Self.adminToken, "Content-Type": "application/json"]
        )
    }

    /// Replaces `service`'s fault plan and expects it accepted.
    func inject(_ service: String, _ plan: String) async throws {
        let response = try await faults(service, "PUT", body: plan)
        guard response.status == 200 else { throw TestFailure("plan refused by \(service): \(response.status) \(response.text)") }
    }

    func clearFaults(_ service: String) async throws {
        let response = try await faults(service, "DELETE")
        guard response.status == 200 else { throw TestFailure("faults not cleared on \(service): \(response.status) \(response.text)") }
    }

    func scrape(_ service: String) async throws -> Exposition {
        Exposition(try await HTTP.send("GET", url(service, "/metrics")).text)
    }

    /// A customer and an open invoice of `tenant`, created through Billing.
    func createInvoice(tenant: String) async throws -> String {
        let customer = try await call("billing-service", "POST", "/api/v1/customers", tenant: tenant, json: ["name": "Fault Test", "email": "faults@example.com"])
        guard customer.status == 201, let customerID = customer["id"] else { throw TestFailure("customer: \(customer.status) \(customer.text)") }
        let invoice = try await call("billing-service", "POST", "/api/v1/invoices", tenant: tenant, json: InvoiceRequest(customerID: customerID))
        guard invoice.status == 201, let id = invoice["id"] else { throw TestFailure("invoice: \(invoice.status) \(invoice.text)") }
        return id
    }

    struct InvoiceRequest: Encodable, Sendable {
        struct Line: Encodable, Sendable {
            let description = "Fault drill"
            let quantity = 1
            let unit_amount_cents = 1999
        }
        let customer_id: String
        let currency = "USD"
        let line_items = [Line()]
        init(customerID: String) { customer_id = customerID }
    }

    /// Rows of `table` belonging to `tenant`, straight from PostgreSQL.
    func count(_ table: String, tenant: String) async throws -> Int {
        try await database.query("test_count", tenant: nil, "SELECT count(*) FROM \(table) WHERE tenant_id = $1", [tenant])[0].decode(Int.self, at: 0)
    }
}

/// A tenant id of this test run.
func newTenant() -> String { "faults-\(UUID().uuidString.prefix(8).lowercased())" }

/// Minimal HTTP calls for tests, on AsyncHTTPClient.
enum HTTP {
    struct Response: Sendable {
        let status: Int
        let text: String

        func json() throws -> [String: Any] {
            guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw TestFailure("not a JSON object: \(text)")
            }
            return object
        }

        subscript(_ key: String) -> String? { (try? json())?[key].map { "\($0)" } }

        /// The names of the active faults in a `GET /admin/faults` answer.
        var activeFaults: Set<String> {
            ((try? json())?["faults"] as? [String: Any]).map { Set($0.keys) } ?? []
        }
    }

    static func send(
        _ method: String, _ url: String, json: (any Encodable & Sendable)? = nil, rawBody: [UInt8]? = nil, headers: [String: String] = [:]
    ) async throws -> Response {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(json)))
            if !request.headers.contains(name: "Content-Type") { request.headers.add(name: "Content-Type", value: "application/json") }
        } else if let rawBody {
            request.body = .bytes(ByteBuffer(bytes: rawBody))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 8 * 1024 * 1024)
        return Response(status: Int(response.status.code), text: String(buffer: body))
    }
}

extension Exposition {
    /// The sum of the samples of `name` whose labels include `labels`.
    func sum(_ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { sample in sample.name == name && labels.allSatisfy { sample[$0.key] == $0.value } }.map(\.value).reduce(0, +)
    }

    /// The one sample of `name` with `labels`, nil when there is none.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { sample[$0.key] == $0.value } }?.value
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
