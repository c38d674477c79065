import CloudBillKit
import CloudBillStorage
import Foundation
import Hummingbird
import Synchronization

/// Verifies bearer tokens with Auth, remembering each verdict for a few seconds so that a
/// busy tenant costs Auth one call per token per interval. Concurrent requests with the same
/// unknown token share one call to Auth.
final class TokenVerifier: Sendable {
    struct Grant: Sendable {
        let tenant: String
        let validUntil: ContinuousClock.Instant
    }

    /// Tokens are remembered by their SHA-256, never in the clear.
    typealias Key = SHA256Digest

    struct State {
        var grants: [Key: Grant] = [:]
        var inFlight: [Key: Task<String?, any Error>] = [:]
        /// Bumped by every ``TokenVerifier/forget(_:)``: a verification that started before
        /// a revocation does not remember its answer.
        var revocations = 0
    }

    let client: ServiceClient
    let authURL: String
    let memory: Duration
    let capacity: Int
    private let state = Mutex(State())

    init(client: ServiceClient, authURL: String, memory: Duration = .seconds(5), capacity: Int = 10_000) {
        self.client = client
        self.authURL = authURL
        self.memory = memory
        self.capacity = capacity
    }

    struct Verification: Decodable {
        let tenantID: String
        let expiresIn: Int
        enum CodingKeys: String, CodingKey {
            case tenantID = "tenant_id"
            case expiresIn = "expires_in"
        }
    }

    static func key(_ token: String) -> Key {
        SHA256Digest.hash(token)
    }

    /// The tenant of a live token; nil for a token Auth rejects.
    func tenant(for token: String, requestID: String) async throws -> String? {
        enum Lookup {
            case remembered(String)
            case pending(Task<String?, any Error>)
        }
        let key = Self.key(token)
        let now = ContinuousClock.now
        let lookup = state.withLock { current -> Lookup in
            if let grant = current.grants[key], grant.validUntil > now { return .remembered(grant.tenant) }
            if let running = current.inFlight[key] { return .pending(running) }
            let revocations = current.revocations
            let task = Task { [self] in
                defer { _ = state.withLock { $0.inFlight.removeValue(forKey: key) } }
                return try await verify(token, key: key, requestID: requestID, rememberingUnless: revocations)
            }
            current.inFlight[key] = task
            return .pending(task)
        }
        switch lookup {
        case .remembered(let tenant): return tenant
        case .pending(let call): return try await call.value
        }
    }

    private func verify(_ token: String, key: Key, requestID: String, rememberingUnless revocations: Int) async throws -> String? {
        let response = try await client.sendJSON(
            .post, authURL, "/internal/tokens/verify", service: "auth-service", tenant: nil, requestID: requestID,
            json: ["token": token], timeout: .seconds(2)
        )
        switch response.status {
        case .ok:
            let verification = try response.decode(Verification.self)
            guard InternalIdentity.isValidTenantID(verification.tenantID) else { return nil }
            let validFor = min(memory, .seconds(max(0, verification.expiresIn)))
            let now = ContinuousClock.now
            state.withLock { state in
                guard state.revocations == revocations else { return }  // revoked meanwhile: ask again next time
                if state.grants.count >= capacity { Self.evict(&state.grants, now: now, capacity: capacity) }
                state.grants[key] = Grant(tenant: verification.tenantID, validUntil: now + validFor)
            }
            return verification.tenantID
        case .unauthorized:
            return nil
        default:
            throw APIError(.badGateway, "The auth-service answered \(response.status.code) when verifying the token.")
        }
    }

    /// Makes room in a full cache, down to nine tenths of its capacity so that the next
    /// sweep is far off: expired grants go first, then those that expire soonest, so the
    /// busy tokens stay remembered.
    static func evict(_ grants: inout [Key: Grant], now: ContinuousClock.Instant, capacity: Int) {
        grants = grants.filter { $0.value.validUntil > now }
        let keep = capacity - max(1, capacity / 10)
        guard grants.count > keep else { return }
        let soonest = grants.sorted { $0.value.validUntil < $1.value.validUntil }.prefix(grants.count - keep)
        for (key, _) in soonest { grants.removeValue(forKey: key) }
    }

    /// Forgets a token's grant, and any verification of it under way, for a revocation.
    func forget(_ token: String) {
        let key = Self.key(token)
        state.withLock { state in
            state.grants.removeValue(forKey: key)
            state.inFlight.removeValue(forKey: key)
            state.revocations &+= 1
        }
    }
}

/// Authenticates `Authorization: Bearer` on the public API, attributes the request to the
/// token's tenant, and applies the tenant's rate limit.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = CloudBillRequestContext
    let verifier: TokenVerifier
    let limiter: RateLimiter
    let failures: FailedAuthenticationLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = Self.bearerToken(request) else {
            throw APIError(.unauthorized, "Send an access token as Authorization: Bearer <token>.", headers: [.wwwAuthenticate: "Bearer"])
        }
        try failures.check(context.clientAddress)
        guard let tenant = try await verifier.tenant(for: token, requestID: context.requestID) else {
            failures.recordFailure(context.clientAddress)
            throw APIError(.unauthorized, code: "invalid_token", "The access token is not valid or has expired.", headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
        }
        context.attribution.tenant = tenant
        if let retryAfter = await limiter.retryAfter(tenant: tenant) {
            throw APIError(.tooManyRequests, "The tenant's rate limit is exceeded; retry after \(retryAfter) s.", headers: [.retryAfter: "\(retryAfter)"])
        }
        return try await next(request, context)
    }

    static func bearerToken(_ request: Request) -> String? {
        guard let value = request.headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty || token.utf8.count > 512 ? nil : token
    }
}

/// A fixed-window rate limit per tenant (one-second windows), shared by every gateway
/// process through a counter in Redis, without a Redis round trip per request.
///
/// Each process counts what it admits and adds it to the window's Redis counter in batches
/// (`INCRBY`): when a tenant's unsent admissions reach ``batch``, or ``flushInterval`` after
/// the last send, the request that crosses the mark sends them and waits for the total, which
/// tells this process what the others admitted. A request is admitted while the last total
/// plus this process's unsent admissions is under the limit, so a single gateway is exact and
/// several overshoot by at most what the others admitted since their last send: a batch each
/// while Redis answers promptly, more while a send waits on a slow Redis (each process goes
/// on admitting on its own counts meanwhile). When Redis cannot answer, each process still
/// holds its own traffic to the limit: an outage of the cache neither stops the API nor
/// lifts the limit.
final class RateLimiter: Sendable {
    struct Window {
        var second: Int
        /// The window's total as Redis last reported it, plus what this process sent since.
        var known: Int
        /// Admitted here, not yet sent to Redis.
        var unsent: Int
        var lastSend: ContinuousClock.Instant
        var sending: Bool
    }

    let cache: Cache
    let requestsPerSecond: Int
    let batch: Int
    let flushInterval: Duration
    /// Tenants tracked before windows of earlier seconds are dropped (once a second at most;
    /// tenants active in the current second are all kept: they are authenticated tenants).
    let capacity: Int
    private let state = Mutex<(windows: [String: Window], sweptSecond: Int)>(([:], 0))

    init(cache: Cache, requestsPerSecond: Int, flushInterval: Duration = .milliseconds(25), capacity: Int = 100_000) {
        self.cache = cache
        self.requestsPerSecond = requestsPerSecond
        self.batch = max(1, requestsPerSecond / 20)
        self.flushInterval = flushInterval
        self.capacity = capacity
    }

    /// Seconds to wait when the tenant is over its limit; nil when the request may go on.
    func retryAfter(tenant: String) async -> Int? {
        let second = Int(Date().timeIntervalSince1970)
        let now = ContinuousClock.now
        let decision = state.withLock { state -> (admitted: Bool, send: Int, second: Int) in
            // A request that read the clock just before another started the next window
            // counts in that window: a window never goes back in time.
            var window = state.windows[tenant].flatMap { $0.second >= second ? $0 : nil }
                ?? Window(second: second, known: 0, unsent: 0, lastSend: now, sending: false)
            if state.windows[tenant] == nil, state.windows.count >= capacity, state.sweptSecond != second {
                state.windows = state.windows.filter { $0.value.second >= second }
                state.sweptSecond = second
            }
            guard window.known + window.unsent < requestsPerSecond else {
                state.windows[tenant] = window
                return (false, 0, window.second)
            }
            window.unsent += 1
            var send = 0
            if !window.sending, window.unsent >= batch || now - window.lastSend >= flushInterval {
                (send, window.known, window.unsent) = (window.unsent, window.known + window.unsent, 0)
                window.sending = true
                window.lastSend = now
            }
            state.windows[tenant] = window
            return (true, send, window.second)
        }
        guard decision.admitted else { return 1 }
        if decision.send > 0 {
            let total = try? await cache.incrementWithExpiry(
                "gateway:ratelimit:\(tenant):\(decision.second)", by: decision.send, window: .seconds(2), tenant: tenant
            )
            state.withLock { state in
                guard var window = state.windows[tenant], window.second == decision.second else { return }
                window.sending = false
                if let total { window.known = max(window.known, total) }
                state.windows[tenant] = window
            }
        }
        return nil
    }
}

/// Slows down guessing: a client address that failed authentication (a bad API key at the
/// token exchange, an invalid bearer token) `limit` times within `window` gets 429 until the
/// window ends. Counted per gateway process, in memory, for at most `capacity` addresses.
final class FailedAuthenticationLimiter: Sendable {
    struct Window {
        var start: ContinuousClock.Instant
        var failures: Int
    }

    let limit: Int
    let window: Duration
    let capacity: Int
    private let windows = Mutex<[String: Window]>([:])

    init(limit: Int = 20, window: Duration = .seconds(60), capacity: Int = 10_000) {
        self.limit = limit
        self.window = window
        self.capacity = capacity
    }

    /// Throws 429 while `address` is over its limit.
    func check(_ address: String?) throws {
        guard let address else { return }
        let now = ContinuousClock.now
        let retryAfter = windows.withLock { windows -> Duration? in
            guard let entry = windows[address], entry.failures >= limit else { return nil }
            let end = entry.start + window
            return end > now ? end - now : nil
        }
        if let retryAfter {
            let seconds = max(1, Int(retryAfter.components.seconds) + 1)
            throw APIError(
                .tooManyRequests, code: "too_many_failed_authentications",
                "Too many failed authentications from this address; retry after \(seconds) s.", headers: [.retryAfter: "\(seconds)"]
            )
        }
    }

    func recordFailure(_ address: String?) {
        guard let address else { return }
        let now = ContinuousClock.now
        windows.withLock { windows in
            if var entry = windows[address], now - entry.start < window {
                entry.failures += 1
                windows[address] = entry
                return
            }
            if windows.count >= capacity {
                windows = windows.filter { now - $0.value.start < window }  // drop ended windows
                guard windows.count < capacity else { return }  // full of live ones: stop tracking new addresses
            }
            windows[address] = Window(start: now, failures: 1)
        }
    }
}
