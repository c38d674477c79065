import CloudBillKit
import CloudBillStorage
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// A tenant as Auth stores it.
struct Tenant: Codable, Sendable {
    let tenantID: String
    let name: String
    let webhookURL: String?

    enum CodingKeys: String, CodingKey {
        case tenantID = "tenant_id"
        case name
        case webhookURL = "webhook_url"
    }
}

/// An access token as issued; the token itself is never stored, only its SHA-256.
struct IssuedToken: Sendable {
    let token: String
    let tenantID: String
    let expiresAt: Date
}

/// A verified token: whose it is and until when.
struct TokenGrant: Codable, Sendable {
    let tenantID: String
    let expiresAt: Date

    enum CodingKeys: String, CodingKey {
        case tenantID = "tenant_id"
        case expiresAt = "expires_at"
    }
}

/// Tenants, API keys and access tokens in PostgreSQL, with verified tokens cached in Redis.
struct CredentialRepository: Sendable {
    let database: ConnectionPool
    let cache: Cache
    let tokenLifetime: Duration
    /// Token hashes whose cache entry may be stale (a revocation Redis missed).
    let stalePurges: StaleCacheEntries

    /// API keys look like `cbk_<12 hex prefix>_<64 hex secret>`; the prefix finds the row.
    static let keyPrefix = "cbk_"
    static let tokenPrefix = "cbt_"

    /// Creates a tenant with its first API key, in one transaction; returns the key, which
    /// is shown once and stored only as a salted hash.
    func createTenant(name: String, webhookURL: String?) async throws -> (Tenant, apiKey: String) {
        let tenantID = UUID().uuidString.lowercased()
        let key = NewAPIKey()
        try await database.withTransaction(tenant: tenantID) { tx in
            try await tx.execute(
                "insert_tenant", "INSERT INTO tenants (id, name, webhook_url) VALUES ($1, $2, $3)",
                [tenantID, name, webhookURL]
            )
            try await tx.execute(
                "insert_api_key",
                "INSERT INTO api_keys (id, tenant_id, prefix, salt, key_hash) VALUES ($1, $2, $3, $4, $5)",
                [UUID(), tenantID, key.prefix, key.salt, key.hash]
            )
        }
        return (Tenant(tenantID: tenantID, name: name, webhookURL: webhookURL), key.apiKey)
    }

    func tenant(_ tenantID: String) async throws -> Tenant? {
        let rows = try await database.query(
            "select_tenant", tenant: tenantID, "SELECT id, name, webhook_url FROM tenants WHERE id = $1", [tenantID]
        )
        guard let row = rows.first else { return nil }
        return Tenant(
            tenantID: try row.decode(String.self, at: 0),
            name: try row.decode(String.self, at: 1),
            webhookURL: try row.decode(String?.self, at: 2)
        )
    }

    /// Exchanges a valid, unrevoked API key for a new access token; nil for any other key.
    func issueToken(apiKey: String) async throws -> IssuedToken? {
        guard let prefix = Self.prefix(ofKey: apiKey) else { return nil }
        let rows = try await database.query(
            "select_api_key", tenant: nil,
            "SELECT id, tenant_id, salt, key_hash FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL", [prefix]
        )
        guard let row = rows.first else { return nil }
        let keyID = try row.decode(UUID.self, at: 0)
        let tenantID = try row.decode(String.self, at: 1)
        let salt = try row.decode(String.self, at: 2)
        guard Secrets.constantTimeEquals(Secrets.sha256Hex(salt, apiKey), try row.decode(String.self, at: 3)) else { return nil }

        let token = Self.tokenPrefix + Secrets.randomHex(bytes: 32)
        let tokenHash = Secrets.sha256Hex(token)
        let expiresAt = Date().addingTimeInterval(tokenLifetime.seconds)
        try await database.execute(
            "insert_token", tenant: tenantID,
            "INSERT INTO access_tokens (token_hash, tenant_id, api_key_id, expires_at) VALUES ($1, $2, $3, $4)",
            [tokenHash, tenantID, keyID, expiresAt]
        )
        await cacheGrant(TokenGrant(tenantID: tenantID, expiresAt: expiresAt), tokenHash: tokenHash)
        return IssuedToken(token: token, tenantID: tenantID, expiresAt: expiresAt)
    }

    /// The grant of a live token: from Redis when cached, else from PostgreSQL (then cached).
    func verify(token: String) async throws -> TokenGrant? {
        guard token.hasPrefix(Self.tokenPrefix), token.utf8.count == Self.tokenPrefix.utf8.count + 64 else { return nil }
        let tokenHash = Secrets.sha256Hex(token)
        if !stalePurges.contains(tokenHash), let cached = await cache.get(Self.cacheKey(tokenHash), tenant: nil),
           let grant = try? JSONDecoder.iso8601.decode(TokenGrant.self, from: Data(cached)) {
            return grant.expiresAt > Date() ? grant : nil
        }
        let rows = try await database.query(
            "select_token", tenant: nil,
            "SELECT tenant_id, expires_at FROM access_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()",
            [tokenHash]
        )
        guard let row = rows.first else { return nil }
        let grant = TokenGrant(tenantID: try row.decode(String.self, at: 0), expiresAt: try row.decode(Date.self, at: 1))
        await cacheGrant(grant, tokenHash: tokenHash)
        return grant
    }

    /// Revokes a token; returns whether it was live.
    func revoke(token: String) async throws -> Bool {
        let tokenHash = Secrets.sha256Hex(token)
        let revoked = try await database.execute(
            "revoke_token", tenant: nil,
            "UPDATE access_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL", [tokenHash]
        )
        try await dropCachedGrants([tokenHash])
        return revoked > 0
    }

    /// Issues a new API key for `tenantID`; with `revokingExisting`, revokes its other keys
    /// and every live token issued with them. Nil when the tenant does not exist.
    func rotateKey(tenantID: String, revokingExisting: Bool) async throws -> (apiKey: String, revokedKeys: Int)? {
        let key = NewAPIKey()
        let result = try await database.withTransaction(tenant: tenantID) { tx -> (Int, [String])? in
            guard try await !tx.query("lock_tenant", "SELECT id FROM tenants WHERE id = $1 FOR UPDATE", [tenantID]).isEmpty else {
                return nil
            }
            var revokedKeys = 0
            var tokenHashes: [String] = []
            if revokingExisting {
                revokedKeys = try await tx.execute(
                    "revoke_api_keys", "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND revoked_at IS NULL", [tenantID]
                )
                tokenHashes = try await tx.query(
                    "revoke_key_tokens",
                    """
                    UPDATE access_tokens SET revoked_at = now()
                    WHERE tenant_id = $1 AND revoked_at IS NULL AND expires_at > now() RETURNING token_hash
                    """,
                    [tenantID]
                ).map { try $0.decode(String.self, at: 0) }
            }
            try await tx.execute(
                "insert_api_key", "INSERT INTO api_keys (id, tenant_id, prefix, salt, key_hash) VALUES ($1, $2, $3, $4, $5)",
                [UUID(), tenantID, key.prefix, key.salt, key.hash]
            )
            return (revokedKeys, tokenHashes)
        }
        guard let (revokedKeys, tokenHashes) = result else { return nil }
        try await dropCachedGrants(tokenHashes)
        return (key.apiKey, revokedKeys)
    }

    /// Drops the cached grants of revoked tokens. What Redis cannot drop now is recorded for
    /// the janitor, and skipped by verification until it is dropped.
    private func dropCachedGrants(_ tokenHashes: [String]) async throws {
        for tokenHash in tokenHashes where !(await cache.delete(Self.cacheKey(tokenHash), tenant: nil)) {
            stalePurges.insert(tokenHash)
            try await database.execute(
                "insert_cache_purge", tenant: nil,
                "INSERT INTO auth_cache_purges (token_hash) VALUES ($1) ON CONFLICT DO NOTHING", [tokenHash]
            )
        }
    }

    /// One janitor pass: drops the cache entries revocations missed and, with
    /// `deletingExpired`, deletes tokens that expired more than an hour ago. Returns how many
    /// cache purges remain.
    @discardableResult
    func purge(deletingExpired: Bool = true) async throws -> Int {
        let hashes = try await database.query(
            "select_cache_purges", tenant: nil, "SELECT token_hash FROM auth_cache_purges ORDER BY created_at LIMIT 1000"
        ).map { try $0.decode(String.self, at: 0) }
        var remaining = Set(hashes)
        for tokenHash in hashes where await cache.delete(Self.cacheKey(tokenHash), tenant: nil) {
            try await database.execute("delete_cache_purge", tenant: nil, "DELETE FROM auth_cache_purges WHERE token_hash = $1", [tokenHash])
            remaining.remove(tokenHash)
        }
        stalePurges.replace(with: remaining)
        guard deletingExpired else { return remaining.count }
        try await database.execute(
            "purge_expired_tokens", tenant: nil, "DELETE FROM access_tokens WHERE expires_at < now() - interval '1 hour'"
        )
        return remaining.count
    }

    private func cacheGrant(_ grant: TokenGrant, tokenHash: String) async {
        let remaining = grant.expiresAt.timeIntervalSinceNow
        guard remaining > 1, let data = try? JSONEncoder.iso8601.encode(grant) else { return }
        await cache.set(Self.cacheKey(tokenHash), Array(data), ttl: .milliseconds(Int64(remaining * 1000)), tenant: grant.tenantID)
    }

    static func cacheKey(_ tokenHash: String) -> String { "auth:token:" + tokenHash }

    static func prefix(ofKey key: String) -> String? {
        let parts = key.split(separator: "_")
        guard key.hasPrefix(keyPrefix), parts.count == 3, parts[1].count == 12, parts[2].count == 64,
              (parts[1] + parts[2]).allSatisfy(\.isHexDigit) else { return nil }
        return String(parts[1])
    }
}

/// A fresh API key, `cbk_<12 hex prefix>_<64 hex secret>`, with what is stored of it: the
/// prefix that finds its row, and a salted hash. The key itself is shown once, never stored.
struct NewAPIKey {
    let prefix = Secrets.randomHex(bytes: 6)
    let salt = Secrets.randomHex(bytes: 16)
    let apiKey: String
    let hash: String

    init() {
        apiKey = CredentialRepository.keyPrefix + prefix + "_" + Secrets.randomHex(bytes: 32)
        hash = Secrets.sha256Hex(salt, apiKey)
    }
}

/// Token hashes whose Redis entry could not be dropped at revocation: shared by the
/// requests of one process and refreshed from PostgreSQL by the janitor.
final class StaleCacheEntries: Sendable {
    private let hashes = Mutex<Set<String>>([])

    func contains(_ tokenHash: String) -> Bool {
        hashes.withLock { $0.isEmpty ? false : $0.contains(tokenHash) }
    }

    func insert(_ tokenHash: String) {
        _ = hashes.withLock { $0.insert(tokenHash) }
    }

    /// Replaces the set with what PostgreSQL still lists.
    func replace(with remaining: Set<String>) {
        hashes.withLock { $0 = remaining }
    }
}

/// Runs ``CredentialRepository/purge()`` every second until shutdown.
struct CredentialJanitor: Service {
    let repository: CredentialRepository
    let logger: Logger
    let interval: Duration
    let schemaReady: SchemaGate

    func run() async throws {
        await cancelWhenGracefulShutdown {
            guard (try? await schemaReady.wait()) != nil else { return }
            var pass = 0
            while !Task.isCancelled {
                do {
                    try await repository.purge(deletingExpired: pass % 60 == 0)
                    pass += 1
                } catch {
                    logger.warning("credential purge failed; retrying", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
