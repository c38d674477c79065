import CloudBillInstrumentation
import CloudBillKit
import CloudBillStorage
import CloudBillTestSupport
import Foundation

/// The real PostgreSQL and Redis the service tests run against: private servers on
/// loopback, started once per test process, with a database of their own.
enum TestEnvironment {
    struct Servers: Sendable {
        let postgres: PostgresServer
        let redis: RedisServer
        let databaseURL: String
        /// The database of the services a test starts alone (``withLiveService``), apart from
        /// the fleet's: their background workers (notification's delivery queue, payment's
        /// reconciler) work across tenants and would otherwise take the fleet's work.
        let standaloneDatabaseURL: String
        let redisURL: String
        /// A pool of the tests' own, to look at what the services stored.
        let database: ConnectionPool
    }

    private static let servers = Task<Servers, any Error> {
        let postgres = try await PostgresServer.shared()
        let redis = try await RedisServer.shared()
        try? await postgres.psql("CREATE DATABASE cloudbill_services")
        try? await postgres.psql("CREATE DATABASE cloudbill_standalone")
        let databaseURL = "host=127.0.0.1 port=\(postgres.port) dbname=cloudbill_services user=postgres"
        return Servers(
            postgres: postgres,
            redis: redis,
            databaseURL: databaseURL,
            standaloneDatabaseURL: "host=127.0.0.1 port=\(postgres.port) dbname=cloudbill_standalone user=postgres",
            redisURL: "redis://127.0.0.1:\(redis.port)",
            database: ConnectionPool(
                configuration: .init(connectionString: databaseURL, maximumConnections: 2),
                metrics: ServiceMetrics(service: "tests").database
            )
        )
    }

    static func shared() async throws -> Servers { try await servers.value }

    /// A configuration for one service on `port` (0: any free port) against the shared servers:
    /// in the fleet's database, or in the standalone services' one.
    static func configuration(port: Int = 0, ports: FleetPorts? = nil, standalone: Bool = false) async throws -> ServiceConfiguration {
        let servers = try await shared()
        var configuration = ServiceConfiguration(
            port: port,
            internalToken: "test-internal-token",
            adminToken: "test-admin-token",
            databaseURL: standalone ? servers.standaloneDatabaseURL : servers.databaseURL,
            databasePoolSize: 8,
            redisURL: servers.redisURL
        )
        if let ports {
            configuration.authURL = "http://127.0.0.1:\(ports.auth)"
            configuration.billingURL = "http://127.0.0.1:\(ports.billing)"
            configuration.paymentURL = "http://127.0.0.1:\(ports.payment)"
            configuration.notificationURL = "http://127.0.0.1:\(ports.notification)"
        }
        return configuration
    }
}

/// The ports of a fleet started by a test.
struct FleetPorts: Sendable {
    let gateway: Int
    let auth: Int
    let billing: Int
    let payment: Int
    let notification: Int

    static func free() throws -> FleetPorts {
        FleetPorts(gateway: try freePort(), auth: try freePort(), billing: try freePort(), payment: try freePort(), notification: try freePort())
    }
}
