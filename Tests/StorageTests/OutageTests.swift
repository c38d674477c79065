import CloudBillInstrumentation
import CloudBillStorage
import CloudBillTestSupport
import Foundation
import Testing

@Suite struct OutageTests {
    @Test func postgresRestartIsSurvivedWithoutANewPool() async throws {
        try await PostgresServer.with { server in
            let fixture = PoolFixture(server, size: 3, acquireTimeout: .seconds(2))
            #expect(try await fixture.pool.query("select", tenant: "t1", "SELECT 1").count == 1)
            let inFlight = Task { try await fixture.pool.query("sleep", tenant: "t1", "SELECT pg_sleep(30)") }
            #expect(await eventually(within: .seconds(1)) { fixture.gauges.active == 1 })

            try await server.stop()
            await #expect(throws: DatabaseError.connectionUnavailable) { try await inFlight.value }
            await #expect(throws: DatabaseError.connectionUnavailable) {
                try await fixture.pool.query("select", tenant: "t1", "SELECT 1")
            }
            #expect(fixture.errors("connection", tenant: "t1") >= 2)
            #expect(fixture.gauges.active == 0)

            try await server.start()
            let restarted = ContinuousClock.now
            let recovered = await eventually(within: .seconds(5)) {
                (try? await fixture.pool.query("select", tenant: "t1", "SELECT 1").count) == 1
            }
            #expect(recovered, "queries fail \(ContinuousClock.now - restarted) after the restart")
            let gauges = fixture.gauges
            // The pool's size is unchanged; what is open now is idle and within it.
            #expect(gauges.total == 3)
            #expect(gauges.active == 0)
            #expect((gauges.idle ?? 0) >= 1 && (gauges.idle ?? 0) <= 3)
            await fixture.pool.close()
        }
    }

    @Test func redisOutageFallsBackToPostgresAndHitsReturnAfterRestart() async throws {
        try await RedisServer.with { redis in
            let database = PoolFixture(try await PostgresServer.shared())
            let cache = Cache(
                configuration: RedisConfiguration(port: redis.port, reconnectDelay: .milliseconds(100)),
                metrics: database.metrics.cache
            )
            /// Reads through the cache; the loader's queries are counted as operation `load_balance`.
            func balance() async throws -> String {
                let bytes = try await cache.cached("balance:t1", ttl: .seconds(60), tenant: "t1") {
                    let rows = try await database.pool.query("load_balance", tenant: "t1", "SELECT $1::text", ["42.00"])
                    return Array(try rows[0].decode(String.self, at: 0).utf8)
                }
                return String(decoding: bytes, as: UTF8.self)
            }
            func loads() -> Double {
                database.exposition.value("db_query_duration_seconds_count", ["operation": "load_balance", "tenant_id": "t1"]) ?? 0
            }
            func operations(_ name: String) -> Double {
                database.exposition.value("redis_operations_total", ["operation": name, "tenant_id": "t1"]) ?? 0
            }

            #expect(try await balance() == "42.00")
            #expect(try await balance() == "42.00")
            #expect(loads() == 1)
            #expect(operations("miss") == 1)
            #expect(operations("hit") == 1)

            try await redis.stop()
            #expect(try await balance() == "42.00")
            #expect(try await balance() == "42.00")
            #expect(loads() == 3)
            #expect((database.exposition.value("redis_errors_total", ["error_type": "connection"]) ?? 0) >= 2)
            #expect(operations("hit") == 1)

            try await redis.start()
            #expect(await eventually(within: .seconds(5)) {
                _ = try? await balance()
                return operations("hit") >= 2
            })
            #expect(try await balance() == "42.00")
            await cache.close()
            await database.pool.close()
        }
    }

    @Test func slowRedisReadsAsAMissAndCountsATimeout() async throws {
        try await RedisServer.with { redis in
            let metrics = ServiceMetrics(service: "storage-test")
            let cache = Cache(
                configuration: RedisConfiguration(port: redis.port, connections: 1, commandTimeout: .milliseconds(100)),
                metrics: metrics.cache
            )
            #expect(await cache.set("k", "v", ttl: .seconds(60), tenant: nil))
            let sleeper = Task { try await redis.cli(["DEBUG", "SLEEP", "0.6"]) }
            try await Task.sleep(for: .milliseconds(150))
            let start = ContinuousClock.now
            #expect(await cache.get("k", tenant: nil) == nil)
            #expect(ContinuousClock.now - start < .milliseconds(400))
            let scrape = Exposition(String(decoding: metrics.exposition(), as: UTF8.self))
            #expect(scrape.value("redis_errors_total", ["error_type": "timeout"]) == 1)
            try await sleeper.value
            #expect(await eventually(within: .seconds(2)) { await cache.getString("k", tenant: nil) == "v" })
            await cache.close()
        }
    }

    /// Every pooled connection was open when Redis restarted; none was used while it was
    /// down. Afterwards each one's socket is closed at the other end, which must not show
    /// as a connection error: Redis is fine, so the command goes through on a new connection.
    @Test func connectionsIdleDuringARedisRestartReportNoErrorAfterwards() async throws {
        try await RedisServer.with { redis in
            let metrics = ServiceMetrics(service: "storage-test")
            let cache = Cache(configuration: RedisConfiguration(port: redis.port, connections: 4), metrics: metrics.cache)
            func connectionErrors() -> Double {
                Exposition(String(decoding: metrics.exposition(), as: UTF8.self)).value("redis_errors_total", ["error_type": "connection"]) ?? 0
            }
            // Opens all four connections: 16 writes at once.
            let opened = await withTaskGroup(of: Bool.self) { group in
                for index in 0..<16 { group.addTask { await cache.set("warm:\(index)", "v", ttl: .seconds(60), tenant: nil) } }
                return await group.reduce(true) { $0 && $1 }
            }
            #expect(opened)
            #expect(connectionErrors() == 0)

            try await redis.stop()
            try await redis.start()
            let written = await withTaskGroup(of: Bool.self) { group in
                for index in 0..<16 { group.addTask { await cache.set("after:\(index)", "v", ttl: .seconds(60), tenant: nil) } }
                return await group.reduce(true) { $0 && $1 }
            }
            for index in 0..<8 { #expect(await cache.set("serial:\(index)", "v", ttl: .seconds(60), tenant: nil)) }
            #expect(written)
            #expect(connectionErrors() == 0)
            await cache.close()
        }
    }
}
