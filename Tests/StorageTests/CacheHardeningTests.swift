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
}
