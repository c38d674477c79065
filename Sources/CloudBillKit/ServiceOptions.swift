import ArgumentParser
import Foundation

/// Command-line options every CloudBill service takes. Each may also come from the
/// environment; a flag wins over the environment, which wins over the default.
public struct ServiceOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: "Address to bind (env CLOUDBILL_HOST; default 127.0.0.1).")
    public var hostname: String?

    @Option(name: .shortAndLong, help: "Port to listen on (env PORT; default: the service's documented port).")
    public var port: Int?

    @Option(name: .long, help: "Distinct tenant_id values kept per metric family (env CLOUDBILL_TENANT_LABEL_LIMIT; default 1000).")
    public var tenantLabelLimit: Int?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical (env LOG_LEVEL; default info).")
    public var logLevel: String?

    @Flag(name: .long, help: "Demo mode (env CLOUDBILL_DEMO=1): the published demo secrets are accepted and used when none is set.")
    public var demo = false

    public init() {}

    public func validate() throws {
        if let port, !(1...65535).contains(port) { throw ValidationError("--port must be between 1 and 65535") }
        if let tenantLabelLimit, tenantLabelLimit < 0 { throw ValidationError("--tenant-label-limit must not be negative") }
    }

    /// The options with every value settled, for a service whose documented port is `defaultPort`.
    public func resolved(defaultPort: Int) throws -> ServiceConfiguration {
        try ServiceConfiguration(environment: ProcessInfo.processInfo.environment, defaultPort: defaultPort, overrides: self)
    }
}

/// A setting that keeps a service from starting: one line naming the variable.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The settled configuration of a service.
public struct ServiceConfiguration: Sendable {
    /// The published secrets of demo mode: accepted only when ``isDemo`` is on.
    public static let demoInternalToken = "cloudbill-demo-internal-token"
    public static let demoAdminToken = "cloudbill-demo-admin-token"
    public static let demoSecrets: Set<String> = [demoInternalToken, demoAdminToken, "cloudbill-demo-redis-password"]

    public var hostname: String
    public var port: Int
    public var tenantLabelLimit: Int
    public var logLevel: String
    /// Whether demo mode is on (`CLOUDBILL_DEMO=1` or `--demo`): published secrets allowed.
    public var isDemo: Bool
    /// Whether `/admin/faults` exists (`CLOUDBILL_FAULTS=on`); it answers 404 otherwise.
    public var faultsEnabled: Bool
    /// The secret that proves a request came through the gateway (`CLOUDBILL_INTERNAL_TOKEN`);
    /// the one this service sends.
    public var internalToken: String
    /// A previous internal secret still accepted while a rotation rolls out
    /// (`CLOUDBILL_INTERNAL_TOKEN_PREVIOUS`); never sent.
    public var previousInternalToken: String?
    /// The secret of the admin API (`CLOUDBILL_ADMIN_TOKEN`).
    public var adminToken: String
    /// libpq connection string or URI (`DATABASE_URL`).
    public var databaseURL: String
    /// Most PostgreSQL connections this process opens (`DB_POOL_SIZE`).
    public var databasePoolSize: Int
    /// `redis://[user:password@]host:port` (`REDIS_URL`).
    public var redisURL: String
    /// Base URLs of the other services (`AUTH_URL`, `BILLING_URL`, `PAYMENT_URL`, `NOTIFICATION_URL`).
    public var authURL: String
    public var billingURL: String
    public var paymentURL: String
    public var notificationURL: String
    /// Requests per second each tenant may make through the gateway (`CLOUDBILL_RATE_LIMIT`).
    public var rateLimitPerSecond: Int
    /// The `scheme://host:port` origins a webhook may be delivered to
    /// (`CLOUDBILL_WEBHOOK_ALLOWED_ORIGINS`, comma-separated; empty by default: no webhooks).
    public var webhookAllowedOrigins: Set<WebhookOrigin>
    /// How long a connection may sit without sending a byte before it is closed (slowloris).
    public var idleTimeout: Duration
    /// How long shutdown waits for in-flight requests (`CLOUDBILL_SHUTDOWN_GRACE_SECONDS`).
    public var shutdownGracePeriod: Duration
    /// Failed authentications a client address may make per minute at the gateway before it
    /// gets 429 (`CLOUDBILL_AUTH_FAILURE_LIMIT`).
    public var authFailureLimit: Int

    public init(
        hostname: String = "127.0.0.1",
        port: Int,
        tenantLabelLimit: Int = 1000,
        logLevel: String = "info",
        isDemo: Bool = false,
        faultsEnabled: Bool = false,
        internalToken: String,
        previousInternalToken: String? = nil,
        adminToken: String,
        databaseURL: String = "postgres://cloudbill:cloudbill@127.0.0.1:5432/cloudbill",
        databasePoolSize: Int = 10,
        redisURL: String = "redis://127.0.0.1:6379",
        authURL: String = "http://127.0.0.1:3001",
        billingURL: String = "http://127.0.0.1:3002",
        paymentURL: String = "http://127.0.0.1:3003",
        notificationURL: String = "http://127.0.0.1:3004",
        rateLimitPerSecond: Int = 100,
        webhookAllowedOrigins: Set<WebhookOrigin> = [],
        idleTimeout: Duration = .seconds(65),
        shutdownGracePeriod: Duration = .seconds(25),
        authFailureLimit: Int = 20
    ) {
        self.hostname = hostname
        self.port = port
        self.tenantLabelLimit = tenantLabelLimit
        self.logLevel = logLevel
        self.isDemo = isDemo
        self.faultsEnabled = faultsEnabled
        self.internalToken = internalToken
        self.previousInternalToken = previousInternalToken
        self.adminToken = adminToken
        self.databaseURL = databaseURL
        self.databasePoolSize = databasePoolSize
        self.redisURL = redisURL
        self.authURL = authURL
        self.billingURL = billingURL
        self.paymentURL = paymentURL
        self.notificationURL = notificationURL
        self.rateLimitPerSecond = rateLimitPerSecond
        self.webhookAllowedOrigins = webhookAllowedOrigins
        self.idleTimeout = idleTimeout
        self.shutdownGracePeriod = shutdownGracePeriod
        self.authFailureLimit = authFailureLimit
    }

    /// The internal secrets a request may carry: the current one, then the previous one.
    public var acceptedInternalTokens: [String] { [internalToken] + (previousInternalToken.map { [$0] } ?? []) }

    /// Reads the environment, then applies the command-line options.
    ///
    /// - Throws: ``ConfigurationError`` naming the variable when a secret is missing, or is a
    ///   published demo value outside demo mode.
    public init(environment: [String: String], defaultPort: Int, overrides: ServiceOptions) throws {
        func text(_ name: String) -> String? {
            guard let value = environment[name], !value.isEmpty else { return nil }
            return value
        }
        func integer(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
            guard let value = text(name) else { return nil }
            guard let number = Int(value), range.contains(number) else {
                throw ConfigurationError("\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound), not '\(value)'")
            }
            return number
        }
        func flag(_ name: String, on: Set<String>) throws -> Bool {
            guard let value = text(name)?.lowercased() else { return false }
            if on.contains(value) { return true }
            if ["0", "off", "false", "no"].contains(value) { return false }
            throw ConfigurationError("\(name) must be one of \(on.sorted().joined(separator: ", ")) or 0/off, not '\(value)'")
        }
        let isDemo = try overrides.demo || flag("CLOUDBILL_DEMO", on: ["1", "on", "true", "yes"])
        func secret(_ name: String, demoValue: String) throws -> String {
            guard let value = text(name) else {
                if isDemo { return demoValue }
                throw ConfigurationError("\(name) is not set; set it to a secret of your own (or run in demo mode with CLOUDBILL_DEMO=1)")
            }
            if !isDemo, Self.demoSecrets.contains(value) {
                throw ConfigurationError("\(name) is a published demo value; set a secret of your own (or run in demo mode with CLOUDBILL_DEMO=1)")
            }
            guard value.utf8.count >= 16 || isDemo else {
                throw ConfigurationError("\(name) must be at least 16 bytes long")
            }
            return value
        }
        self.init(
            port: defaultPort,
            isDemo: isDemo,
            internalToken: try secret("CLOUDBILL_INTERNAL_TOKEN", demoValue: Self.demoInternalToken),
            adminToken: try secret("CLOUDBILL_ADMIN_TOKEN", demoValue: Self.demoAdminToken)
        )
        if text("CLOUDBILL_INTERNAL_TOKEN_PREVIOUS") != nil {
            previousInternalToken = try secret("CLOUDBILL_INTERNAL_TOKEN_PREVIOUS", demoValue: "")
        }
        faultsEnabled = try flag("CLOUDBILL_FAULTS", on: ["on", "1", "true", "yes"])
        hostname = overrides.hostname ?? text("CLOUDBILL_HOST") ?? hostname
        port = try overrides.port ?? integer("PORT", in: 1...65535) ?? port
        tenantLabelLimit = try overrides.tenantLabelLimit ?? integer("CLOUDBILL_TENANT_LABEL_LIMIT", in: 0...1_000_000) ?? tenantLabelLimit
        logLevel = overrides.logLevel ?? text("LOG_LEVEL") ?? logLevel
        databaseURL = text("DATABASE_URL") ?? databaseURL
        databasePoolSize = try integer("DB_POOL_SIZE", in: 1...500) ?? databasePoolSize
        redisURL = text("REDIS_URL") ?? redisURL
        authURL = text("AUTH_URL") ?? authURL
        billingURL = text("BILLING_URL") ?? billingURL
        paymentURL = text("PAYMENT_URL") ?? paymentURL
        notificationURL = text("NOTIFICATION_URL") ?? notificationURL
        rateLimitPerSecond = try integer("CLOUDBILL_RATE_LIMIT", in: 1...1_000_000) ?? rateLimitPerSecond
        if let origins = text("CLOUDBILL_WEBHOOK_ALLOWED_ORIGINS") {
            webhookAllowedOrigins = Set(try origins.split(separator: ",").map { item in
                guard let origin = WebhookOrigin(String(item.trimmingCharacters(in: .whitespaces))) else {
                    throw ConfigurationError("CLOUDBILL_WEBHOOK_ALLOWED_ORIGINS: '\(item)' is not an origin like https://hooks.example.com:443")
                }
                return origin
            })
        }
        if let seconds = try integer("CLOUDBILL_IDLE_TIMEOUT_SECONDS", in: 1...3600) { idleTimeout = .seconds(seconds) }
        if let seconds = try integer("CLOUDBILL_SHUTDOWN_GRACE_SECONDS", in: 1...600) { shutdownGracePeriod = .seconds(seconds) }
        authFailureLimit = try integer("CLOUDBILL_AUTH_FAILURE_LIMIT", in: 1...1_000_000) ?? authFailureLimit
        let redis = try redisEndpoint
        if let password = redis.password, !isDemo, Self.demoSecrets.contains(password) {
            throw ConfigurationError("REDIS_URL carries a published demo password; set one of your own (or run in demo mode with CLOUDBILL_DEMO=1)")
        }
    }

    /// Host, port and credentials of `redisURL`.
    public var redisEndpoint: (host: String, port: Int, user: String?, password: String?) {
        get throws {
            guard let url = URL(string: redisURL), url.scheme == "redis", let host = url.host, !host.isEmpty else {
                throw ConfigurationError("REDIS_URL must look like redis://[user:password@]host:port, not '\(Self.redacted(redisURL))'")
            }
            let user = url.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
            let password = url.password.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
            return (host, url.port ?? 6379, user, password)
        }
    }

    /// A URL with its password replaced, for messages.
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? "redis://***"
    }
}
