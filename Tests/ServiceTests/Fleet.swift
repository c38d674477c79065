import AsyncHTTPClient
@testable import AuthSvc
@testable import BillingSvc
import CloudBillKit
import CloudBillTestSupport
import Foundation
@testable import Gateway
import Hummingbird
import NIOCore
@testable import NotifySvc
@testable import PaymentSvc
import Synchronization

/// The five services running together in this process on loopback ports, against the test
/// PostgreSQL and Redis, each built through its own `buildApplication`; started once for
/// all the tests that need a whole fleet.
final class Fleet: Sendable {
    let ports: FleetPorts
    let configuration: ServiceConfiguration
    let sink: WebhookSink
    let servers: TestEnvironment.Servers
    var gatewayURL: String { "http://127.0.0.1:\(ports.gateway)" }

    private init(ports: FleetPorts, configuration: ServiceConfiguration, sink: WebhookSink, servers: TestEnvironment.Servers) {
        self.ports = ports
        self.configuration = configuration
        self.sink = sink
        self.servers = servers
    }

    private static let started = Task<Fleet, any Error> {
        let ports = try FleetPorts.free()
        var configuration = try await TestEnvironment.configuration(ports: ports)
        configuration.rateLimitPerSecond = 40
        let sink = try await WebhookSink.start()
        configuration.webhookAllowedOrigins = [WebhookOrigin(scheme: "http", host: "127.0.0.1", port: sink.port)]
        // Many suites send bad tokens from this one address; the limit has a test of its own.
        configuration.authFailureLimit = 100_000
        let fleet = Fleet(ports: ports, configuration: configuration, sink: sink, servers: try await TestEnvironment.shared())
        func launch(_ app: some ApplicationProtocol) {
            Task.detached { try await app.run() }
        }
        func on(_ port: Int) -> ServiceConfiguration {
            var c = configuration
            c.port = port
            return c
        }
        launch(try AuthSvc.buildApplication(configuration: on(ports.auth)))
        launch(try BillingSvc.buildApplication(configuration: on(ports.billing)))
        launch(try PaymentSvc.buildApplication(configuration: on(ports.payment)))
        launch(try NotifySvc.buildApplication(configuration: on(ports.notification)))
        launch(try Gateway.buildApplication(configuration: on(ports.gateway)))
        for port in [ports.auth, ports.billing, ports.payment, ports.notification, ports.gateway] {
            try await waitUntilReady(port: port)
        }
        return fleet
    }

    static func shared() async throws -> Fleet { try await started.value }

    static func waitUntilReady(port: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let response = try? await HTTP.get("http://127.0.0.1:\(port)/ready"), response.status == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FleetFailure( "service on port \(port) did not become ready")
    }

    // MARK: A tenant's view

    /// A tenant created through the admin API, with a token.
    struct Tenant: Sendable {
        let id: String
        let apiKey: String
        let token: String
    }

    func createTenant(name: String = "Tenant \(UUID().uuidString.prefix(8))", webhook: Bool = false) async throws -> Tenant {
        var body: [String: String] = ["name": name]
        if webhook { body["webhook_url"] = sink.url }
        let created = try await HTTP.send("POST", gatewayURL + "/admin/tenants", json: body, headers: ["X-Admin-Token": configuration.adminToken])
        guard created.status == 201 else { throw FleetFailure( "tenant not created: \(created.status) \(created.text)") }
        let tenant = try created.json()
        let key = tenant["api_key"] as! String
        let token = try await HTTP.send("POST", gatewayURL + "/api/v1/auth/token", json: ["api_key": key])
        return Tenant(id: tenant["tenant_id"] as! String, apiKey: key, token: try token.json()["access_token"] as! String)
    }

    /// Calls the public API as `tenant`.
    func call(
        _ method: String, _ path: String, as tenant: Tenant?, json: (any Encodable & Sendable)? = nil, headers: [String: String] = [:]
    ) async throws -> HTTP.Response {
        var headers = headers
        if let tenant { headers["Authorization"] = "Bearer \(tenant.token)" }
        return try await HTTP.send(method, gatewayURL + path, json: json, headers: headers)
    }

    /// Scrapes one service's metrics.
    func scrape(port: Int) async throws -> Exposition {
        Exposition(try await HTTP.get("http://127.0.0.1:\(port)/metrics").text)
    }

    /// Counts rows of `table` belonging to `tenant`, straight from PostgreSQL.
    func count(_ table: String, tenant: String) async throws -> Int {
        try await servers.database.query("test_count", tenant: nil, "SELECT count(*) FROM \(table) WHERE tenant_id = $1", [tenant])[0]
            .decode(Int.self, at: 0)
    }
}

/// Minimal HTTP calls for tests, on AsyncHTTPClient.
enum HTTP {
    struct Response: Sendable {
        let status: Int
        let headers: [String: String]
        let text: String

        func json() throws -> [String: any Sendable] {
            guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw FleetFailure( "not a JSON object: \(text)")
            }
            return object.mapValues { $0 as! any Sendable }
        }

        subscript(_ key: String) -> String? { (try? json())?[key].map { "\($0)" } }
    }

    static func get(_ url: String, headers: [String: String] = [:]) async throws -> Response {
        try await send("GET", url, json: nil, headers: headers)
    }

    static func send(
        _ method: String, _ url: String, json: (any Encodable & Sendable)? = nil, rawBody: [UInt8]? = nil,
        headers: [String: String] = [:], timeout: Duration = .seconds(30)
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
        let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(timeout.components.seconds * 1000)))
        let body = try await response.body.collect(upTo: 8 * 1024 * 1024)
        var fields: [String: String] = [:]
        for header in response.headers { fields[header.name.lowercased()] = header.value }
        return Response(status: Int(response.status.code), headers: fields, text: String(buffer: body))
    }
}

/// A local HTTP server that records the webhooks it receives.
final class WebhookSink: Sendable {
    let port: Int
    private let received = Mutex<[String]>([])
    var url: String { "http://127.0.0.1:\(port)/hooks" }

    private init(port: Int) { self.port = port }

    static func start() async throws -> WebhookSink {
        let sink = WebhookSink(port: try freePort())
        let router = Router()
        router.post("/hooks") { request, _ -> HTTPResponse.Status in
            var request = request
            let body = try await request.collectBody(upTo: 1_000_000)
            sink.received.withLock { $0.append(String(buffer: body)) }
            return .noContent
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: sink.port)))
        Task.detached { try await app.run() }
        try await Fleet.waitUntilListening(port: sink.port)
        return sink
    }

    /// Waits until a received body contains `text`.
    func waitForBody(containing text: String, timeout: Duration = .seconds(10)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let body = received.withLock({ $0.first { $0.contains(text) } }) { return body }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FleetFailure( "no webhook containing \(text) arrived")
    }
}

extension Fleet {
    static func waitUntilListening(port: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if (try? await HTTP.get("http://127.0.0.1:\(port)/")) != nil { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FleetFailure( "nothing listens on \(port)")
    }
}

struct FleetFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
