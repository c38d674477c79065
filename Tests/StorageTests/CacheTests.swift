import CloudBillInstrumentation
import CloudBillStorage
import CloudBillTestSupport
import Foundation
import Testing

@Suite struct CacheTests {
    struct Fixture {
        let metrics = ServiceMetrics(service: "storage-test", databasePool: false)
        let cache: Cache

        init() async throws {
            cache = Cache(configuration: RedisConfiguration(port: try await RedisServer.shared().port), metrics: metrics.cache)
        }

        func operations(_ name: String, tenant: String = "t1") -> Double {
            scrape.value("redis_operations_total", ["operation": name, "tenant_id": tenant]) ?? 0
        }

        var scrape: Exposition { Exposition(String(decoding: metrics.exposition(), as: UTF8.self)) }
    }

    @Test func readsCountHitsAndMissesWritesCountSetsAndRemovalsCountDeletes() async throws {
        let fixture = try await Fixture()
        let key = uniqueName("invoice")
        #expect(await fixture.cache.get(key, tenant: "t1") == nil)
        #expect(await fixture.cache.set(key, "{\"total\":42}", ttl: .seconds(60), tenant: "t1"))
        #expect(await fixture.cache.getString(key, tenant: "t1") == "{\"total\":42}")
        #expect(await fixture.cache.delete(key, tenant: "t1"))
        #expect(await fixture.cache.get(key, tenant: "t1") == nil)
        #expect(fixture.operations("miss") == 2)
        #expect(fixture.operations("hit") == 1)
        #expect(fixture.operations("set") == 1)
        #expect(fixture.operations("delete") == 1)
        #expect(fixture.scrape.value("redis_operation_duration_seconds_count", ["operation": "hit"]) == 1)
        #expect(fixture.scrape.value("redis_errors_total", ["error_type": "connection"]) ?? 0 == 0)
        await fixture.cache.close()
    }

    @Test func manyKeysAreReadInOneMGETAndWrittenInOnePipelineEachKeyCounted() async throws {
        let fixture = try await Fixture()
        let keys = (0..<3).map { uniqueName("many-\($0)") }
        #expect(await fixture.cache.set([(keys[0], Array("zero".utf8)), (keys[2], [0, 13, 10])], ttl: .seconds(60), tenant: "t1") == 2)
        #expect(await fixture.cache.get(keys, tenant: "t1") == [Array("zero".utf8), nil, [0, 13, 10]])
        #expect(await fixture.cache.get([], tenant: "t1") == [])
        #expect(fixture.operations("set") == 2)
        #expect(fixture.operations("hit") == 2)
        #expect(fixture.operations("miss") == 1)
        await fixture.cache.close()
    }

    @Test func valuesAreBinarySafe() async throws {
        let fixture = try await Fixture()
        let key = uniqueName("blob") + " with spaces\r\n and 🧾"
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(await fixture.cache.set(key, bytes, ttl: .seconds(60), tenant: "t1"))
        #expect(await fixture.cache.get(key, tenant: "t1") == bytes)
        #expect(await fixture.cache.set(key, [0, 0, 13, 10, 0], ttl: .seconds(60), tenant: "t1"))
        #expect(await fixture.cache.get(key, tenant: "t1") == [0, 0, 13, 10, 0])
        await fixture.cache.close()
    }

    @Test func valuesExpireAfterTheirTTL() async throws {
        let fixture = try await Fixture()
        let key = uniqueName("session")
        #expect(await fixture.cache.set(key, "v", ttl: .seconds(1), tenant: "t1"))
        #expect(await fixture.cache.getString(key, tenant: "t1") == "v")
        try await Task.sleep(for: .milliseconds(1500))
        #expect(await fixture.cache.get(key, tenant: "t1") == nil)
        await fixture.cache.close()
    }

    @Test func rateLimitCounterCountsWithinItsWindowAndRestartsAfterIt() async throws {
        let fixture = try await Fixture()
        let key = uniqueName("ratelimit")
        for expected in 1...5 {
            #expect(try await fixture.cache.incrementWithExpiry(key, window: .seconds(1), tenant: "t1") == expected)
        }
        try await Task.sleep(for: .milliseconds(1500))
        #expect(try await fixture.cache.incrementWithExpiry(key, window: .seconds(1), tenant: "t1") == 1)
        #expect(fixture.operations("set") == 6)
        await fixture.cache.close()
    }

    @Test func commandRejectedByRedisIsCountedAndReadsAsNothing() async throws {
        let fixture = try await Fixture()
        let key = uniqueName("counter")
        #expect(await fixture.cache.set(key, "not a number", ttl: .seconds(60), tenant: "t1"))
        await #expect(throws: CacheError.commandRejected) {
            try await fixture.cache.incrementWithExpiry(key, window: .seconds(1), tenant: "t1")
        }
        #expect(fixture.scrape.value("redis_errors_total", ["error_type": "command"]) == 1)
        await fixture.cache.close()
    }

    @Test func unreachableRedisReadsAsAMiss() async throws {
        let metrics = ServiceMetrics(service: "storage-test", databasePool: false)
        let cache = Cache(configuration: RedisConfiguration(port: 1), metrics: metrics.cache)
        #expect(await cache.get("k", tenant: "t1") == nil)
        #expect(await cache.set("k", "v", ttl: .seconds(1), tenant: "t1") == false)
        await #expect(throws: CacheError.unavailable) { try await cache.incrementWithExpiry("k", window: .seconds(1), tenant: "t1") }
        let scrape = Exposition(String(decoding: metrics.exposition(), as: UTF8.self))
        #expect(scrape.value("redis_errors_total", ["error_type": "connection"]) == 3)
        #expect(scrape.value("redis_operations_total", ["operation": "miss", "tenant_id": "t1"]) ?? 0 == 0)
        await cache.close()
    }
}
