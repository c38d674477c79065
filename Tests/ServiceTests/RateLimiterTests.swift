import CloudBillInstrumentation
import CloudBillStorage
import Foundation
@testable import Gateway
import Testing

/// The gateway's per-tenant limit, counted locally and shared through Redis in batches.
@Suite(.serialized) struct RateLimiterTests {
    /// Waits for the start of a wall-clock second, so that a burst stays in one window.
    private func startOfASecond() async throws {
        let fraction = Date().timeIntervalSince1970.truncatingRemainder(dividingBy: 1)
        try await Task.sleep(for: .milliseconds(Int((1 - fraction) * 1000) + 5))
    }

    /// Admissions of a burst that ran within one wall-clock second, the limiter's window. A
    /// busy machine can stretch a burst into the next second, where counting starts again (183
    /// of 250 were admitted so once): such a burst is tried again, with a new tenant.
    private func admittedWithinOneSecond(_ burst: (_ tenant: String) async throws -> Int) async throws -> Int {
        for _ in 0..<5 {
            try await startOfASecond()
            let second = Int(Date().timeIntervalSince1970)
            let admitted = try await burst("limit-\(UUID().uuidString.prefix(8))")
            if Int(Date().timeIntervalSince1970) == second { return admitted }
        }
        throw BurstTooSlow()
    }

    private struct BurstTooSlow: Error, CustomStringConvertible {
        var description: String { "five bursts in a row took more than their second" }
    }

    private func cache(port: Int) -> Cache {
        Cache(configuration: RedisConfiguration(host: "127.0.0.1", port: port), metrics: ServiceMetrics(service: "limiter-test", databasePool: false).cache)
    }

    @Test func oneGatewayAdmitsExactlyTheLimit() async throws {
        let servers = try await TestEnvironment.shared()
        let cache = cache(port: servers.redis.port)
        defer { Task { await cache.close() } }
        let limiter = RateLimiter(cache: cache, requestsPerSecond: 100)
        let admitted = try await admittedWithinOneSecond { tenant in
            var admitted = 0
            for _ in 0..<250 where await limiter.retryAfter(tenant: tenant) == nil { admitted += 1 }
            return admitted
        }
        #expect(admitted == 100)
        #expect(await limiter.retryAfter(tenant: "another-tenant-\(UUID().uuidString.prefix(8))") == nil)
    }

    @Test func twoGatewaysShareTheLimitThroughRedis() async throws {
        let servers = try await TestEnvironment.shared()
        let cache = cache(port: servers.redis.port)
        defer { Task { await cache.close() } }
        // Two processes' limiters: each knows only what Redis tells it of the other.
        let first = RateLimiter(cache: cache, requestsPerSecond: 100)
        let second = RateLimiter(cache: cache, requestsPerSecond: 100)
        let admitted = try await admittedWithinOneSecond { tenant in
            var admitted = 0
            for index in 0..<400 where await (index.isMultiple(of: 2) ? first : second).retryAfter(tenant: tenant) == nil {
                admitted += 1
            }
            return admitted
        }
        // Each process alone would admit 100 (200 together): the shared counter holds the
        // total to the limit plus at most one unsent batch of the other process.
        #expect(admitted >= 100)
        #expect(admitted <= 100 + first.batch)
    }

    @Test func withoutRedisEachGatewayStillHoldsTheLimit() async throws {
        let cache = cache(port: 1)  // nothing listens there
        defer { Task { await cache.close() } }
        let limiter = RateLimiter(cache: cache, requestsPerSecond: 50)
        let admitted = try await admittedWithinOneSecond { tenant in
            var admitted = 0
            for _ in 0..<120 where await limiter.retryAfter(tenant: tenant) == nil { admitted += 1 }
            return admitted
        }
        #expect(admitted == 50)
    }
}
