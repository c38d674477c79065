import CloudBillInstrumentation
import CloudBillStorage
import CloudBillTestSupport
import Foundation
import Testing

/// The cache's protections: key namespaces, credentials, and bounded waits when Redis stalls.
@Suite(.serialized) struct CacheHardeningTests {
    @Test func flushStaysInsideTheCallersNamespace() async throws {
        let port = try await RedisServer.shared().port
        let billing = Cache(configuration: RedisConfiguration(port: port, keyNamespace: "billing:"), metrics: ServiceMetrics(service: "billing").cache)
        let auth = Cache(configuration: RedisConfiguration(port: port, keyNamespace: "auth:"), metrics: ServiceMetrics(service: "auth").cache)
        defer { Task { await billing.close(); await auth.close() } }
        let suffix = UUID().uuidString
        #expect(await billing.set("billing:invoice:\(suffix)", "x", ttl: .seconds(60), tenant: nil))
        #expect(await auth.set("auth:token:\(suffix)", "y", ttl: .seconds(60), tenant: nil))

        #expect(await billing.removeKeys(matching: "*") ?? 0 >= 1)
        #expect(await billing.removeKeys(matching: "auth:*") == 0)  // means billing:auth:*
        #expect(await billing.getString("billing:invoice:\(suffix)", tenant: nil) == nil)
        #expect(await auth.getString("auth:token:\(suffix)", tenant: nil) == "y")
    }

    @Test func passwordIsSentAndAWrongOneIsRefused() async throws {
        try await RedisServer.with { server in
            try await server.cli(["CONFIG", "SET", "requirepass", "s3cret-for-tests"])
            let good = Cache(configuration: RedisConfiguration(port: server.port, password: "s3cret-for-tests"), metrics: ServiceMetrics(service: "a").cache)
            let wrong = Cache(configuration: RedisConfiguration(port: server.port, password: "not-it"), metrics: ServiceMetrics(service: "b").cache)
            let none = Cache(configuration: RedisConfiguration(port: server.port), metrics: ServiceMetrics(service: "c").cache)
            #expect(await good.set("k", "v", ttl: .seconds(10), tenant: nil))
            #expect(await good.getString("k", tenant: nil) == "v")
            #expect(await wrong.getString("k", tenant: nil) == nil)
            #expect(await none.getString("k", tenant: nil) == nil)
            #expect(await wrong.ping() == false)
            await good.close(); await wrong.close(); await none.close()
        }
    }

    @Test func frozenRedisCostsBoundedTimeAndTheBreakerOpens() async throws {
        try await RedisServer.with { server in
            let cache = Cache(
                configuration: RedisConfiguration(port: server.port, connections: 2, maximumQueued: 8, breakerThreshold: 4, breakerCooldown: .milliseconds(500)),
                metrics: ServiceMetrics(service: "frozen").cache
            )
            #expect(await cache.set("k", "v", ttl: .seconds(60), tenant: nil))
            server.freeze()
            let start = ContinuousClock.now
            // 40 callers at once: 2 run, 8 queue with a deadline, the rest are shed at once.
            let answers = await withTaskGroup(of: String?.self) { group in
                for _ in 0..<40 { group.addTask { await cache.getString("k", tenant: nil) } }
                return await group.reduce(into: [String?]()) { $0.append($1) }
            }
            let elapsed = ContinuousClock.now - start
            #expect(answers.allSatisfy { $0 == nil })
            #expect(elapsed < .seconds(2), "40 reads against a frozen Redis took \(elapsed)")
            #expect(cache.isShedding)
            let shedStart = ContinuousClock.now
            #expect(await cache.getString("k", tenant: nil) == nil)
            #expect(ContinuousClock.now - shedStart < .milliseconds(100))

            server.thaw()
            try await Task.sleep(for: .milliseconds(700))
            var recovered = false
            for _ in 0..<20 where !recovered {
                recovered = await cache.getString("k", tenant: nil) == "v"
                if !recovered { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(recovered, "reads did not come back after Redis did")
            #expect(!cache.isShedding)
            await cache.close()
        }
    }

    /// An invalidation sent while Redis is frozen: the old copy stays in Redis, but this cache
    /// never serves it, and `run()` deletes it once Redis answers again.
    @Test func anInvalidationLostToAFrozenRedisIsSentAgainAndNeverServedMeanwhile() async throws {
        try await RedisServer.with { server in
            let configuration = RedisConfiguration(port: server.port, connections: 2, breakerThreshold: 1)
            let cache = Cache(configuration: configuration, metrics: ServiceMetrics(service: "invalidation").cache)
            let other = Cache(configuration: RedisConfiguration(port: server.port), metrics: ServiceMetrics(service: "other").cache)
            #expect(await cache.set("invoice:1", "open", ttl: .seconds(60), tenant: nil))
            #expect(await cache.set("invoice:2", "open", ttl: .seconds(60), tenant: nil))

            server.freeze()
            // A read times out and opens the breaker: the delete is never sent. (One sent to a
            // frozen Redis would still run once it thaws, in the socket's buffer.)
            #expect(await cache.getString("invoice:2", tenant: nil) == nil)
            #expect(cache.isShedding)
            #expect(await cache.delete("invoice:1", tenant: nil) == false)
            #expect(cache.unconfirmedDeletes == 1)
            server.thaw()

            // Redis still holds the old copy (another client reads it); this cache, reading
            // from Redis again (invoice:2 is a hit), misses it.
            #expect(await other.getString("invoice:1", tenant: nil) == "open")
            var answering = false
            for _ in 0..<30 where !answering {
                answering = await cache.getString("invoice:2", tenant: nil) == "open"
                if !answering { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(answering, "the cache did not read from Redis again after the thaw")
            #expect(await cache.getString("invoice:1", tenant: nil) == nil)
            #expect(await cache.get(["invoice:1", "invoice:2"], tenant: nil).map { $0.map { String(decoding: $0, as: UTF8.self) } } == [nil, "open"])

            let running = Task { try await cache.run() }
            var confirmed = false
            for _ in 0..<30 where !confirmed {
                try await Task.sleep(for: .milliseconds(100))
                confirmed = cache.unconfirmedDeletes == 0
            }
            running.cancel()
            _ = try? await running.value
            #expect(confirmed, "the delete was not sent again within 3 s")
            #expect(await other.getString("invoice:1", tenant: nil) == nil)
            #expect(await other.getString("invoice:2", tenant: nil) == "open")
            await other.close()
        }
    }

    /// Past the bound of remembered deletes every read misses, until one removal of the whole
    /// namespace succeeds.
    @Test func tooManyLostInvalidationsEmptyTheNamespaceOnceRedisAnswers() async throws {
        try await RedisServer.with { server in
            let configuration = RedisConfiguration(port: server.port, keyNamespace: "billing:", connections: 2, breakerThreshold: 2)
            let cache = Cache(configuration: configuration, metrics: ServiceMetrics(service: "overflow").cache)
            let auth = Cache(configuration: RedisConfiguration(port: server.port, keyNamespace: "auth:"), metrics: ServiceMetrics(service: "auth").cache)
            #expect(await cache.set("billing:kept-too-long", "old", ttl: .seconds(60), tenant: nil))
            #expect(await auth.set("auth:token", "t", ttl: .seconds(60), tenant: nil))

            server.freeze()
            // The breaker opens after two failures: the rest fail at once, without waiting.
            for n in 0...Cache.maximumUnconfirmedDeletes {
                await cache.delete("billing:invoice:\(n)", tenant: nil)
            }
            server.thaw()
            var answering = false
            for _ in 0..<30 where !answering {
                answering = await cache.ping()
                if !answering { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(answering, "the cache did not reach Redis again after the thaw")

            // The old copy is still in Redis; this cache, answered by Redis, misses every key.
            let reader = Cache(configuration: RedisConfiguration(port: server.port, keyNamespace: "billing:"), metrics: ServiceMetrics(service: "reader").cache)
            #expect(await reader.getString("billing:kept-too-long", tenant: nil) == "old")
            #expect(await cache.getString("billing:kept-too-long", tenant: nil) == nil)
            var left = 1
            for _ in 0..<20 where left > 0 {
                left = await cache.confirmDeletes()
                if left > 0 { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(left == 0)
            #expect(await reader.getString("billing:kept-too-long", tenant: nil) == nil)
            #expect(await auth.getString("auth:token", tenant: nil) == "t")
            #expect(await cache.set("billing:new", "fresh", ttl: .seconds(60), tenant: nil))
            #expect(await cache.getString("billing:new", tenant: nil) == "fresh")
            await cache.close(); await auth.close(); await reader.close()
        }
    }
}
