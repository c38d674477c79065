import CloudBillInstrumentation
import CloudBillStorage
import CloudBillTestSupport
import Foundation

/// A pool on `server` with its own metrics registry, so each test reads only its own series.
struct PoolFixture {
    let metrics = ServiceMetrics(service: "storage-test")
    let pool: ConnectionPool

    init(
        _ connectionString: String, size: Int = 4, acquireTimeout: Duration = .seconds(10),
        statementTimeout: Duration = .seconds(5), applicationName: String = "cloudbill-test"
    ) {
        pool = ConnectionPool(
            configuration: PostgresConfiguration(
                connectionString: connectionString, maximumConnections: size, acquireTimeout: acquireTimeout,
                statementTimeout: statementTimeout, applicationName: applicationName
            ),
            metrics: metrics.database
        )
    }

    init(_ server: PostgresServer, size: Int = 4, acquireTimeout: Duration = .seconds(10), statementTimeout: Duration = .seconds(5)) {
        self.init(server.connectionString, size: size, acquireTimeout: acquireTimeout, statementTimeout: statementTimeout)
    }

    var exposition: Exposition { Exposition(String(decoding: metrics.exposition(), as: UTF8.self)) }

    /// The four pool gauges as `/metrics` shows them.
    var gauges: (total: Double?, active: Double?, idle: Double?, waiting: Double?) {
        let scrape = exposition
        return (
            scrape.value("db_pool_total_connections", [:]), scrape.value("db_pool_active_connections", [:]),
            scrape.value("db_pool_idle_connections", [:]), scrape.value("db_pool_waiting_requests", [:])
        )
    }

    func errors(_ type: String, tenant: String) -> Double {
        exposition.value("db_errors_total", ["error_type": type, "tenant_id": tenant]) ?? 0
    }
}

/// Polls until `condition` holds or `timeout` passes; returns whether it held.
func eventually(within timeout: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

/// A name no other test uses, for tables and databases on the shared server.
func uniqueName(_ prefix: String) -> String {
    "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
}
