import CloudBillStorage

/// Auth's tables: versions 100 to 199 of the shared migration sequence.
enum AuthSchema {
    static let migrations = [
        Migration(version: 100, name: "auth_tenants_keys_tokens", sql: """
            CREATE TABLE tenants (
                id          text PRIMARY KEY,
                name        text NOT NULL,
                webhook_url text,
                created_at  timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE api_keys (
                id         uuid PRIMARY KEY,
                tenant_id  text NOT NULL REFERENCES tenants (id),
                prefix     text NOT NULL UNIQUE,
                salt       text NOT NULL,
                key_hash   text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                revoked_at timestamptz
            );
            CREATE TABLE access_tokens (
                token_hash text PRIMARY KEY,
                tenant_id  text NOT NULL REFERENCES tenants (id),
                api_key_id uuid NOT NULL REFERENCES api_keys (id),
                expires_at timestamptz NOT NULL,
                revoked_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);
            """),
        Migration(version: 101, name: "auth_cache_purges", sql: """
            -- Token cache entries Redis could not drop at revocation time: the janitor drops
            -- them when Redis answers again, and until then verification skips the cache.
            CREATE TABLE auth_cache_purges (
                token_hash text PRIMARY KEY,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX access_tokens_api_key ON access_tokens (api_key_id) WHERE revoked_at IS NULL;
            """),
    ]
}
