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

/// The settled configuration of a service.
public struct ServiceConfiguration: Sendable {
    /// Secrets used when none is configured: fit for a demo on one machine only.
    public static let demoInternalToken = "cloudbill-demo-internal-token"
    public static let demoAdminToken = "cloudbill-demo-admin-token"

    public var hostname: String
    public var port: Int
    public var tenantLabelLimit: Int
    public var logLevel: String
    /// The secret that proves a request came through the gateway (`CLOUDBILL_INTERNAL_TOKEN`).
    public var internalToken: String
    /// The secret of the admin API (`CLOUDBILL_ADMIN_TOKEN`).
    public var adminToken: String
    /// libpq connection string or URI (`DATABASE_URL`).
    public var databaseURL: String
    /// Most PostgreSQL connections this process opens (`DB_POOL_SIZE`).
    public var databasePoolSize: Int
    /// `redis://host:port` (`REDIS_URL`).
    public var redisURL: String
    /// Base URLs of the other services (`AUTH_URL`, `BILLING_URL`, `PAYMENT_URL`, `NOTIFICATION_URL`).
    public var authURL: String
    public var billingURL: String
    public var paymentURL: String
    public var notificationURL: String
    /// Requests per second each tenant may make through the gateway (`CLOUDBILL_RATE_LIMIT`).
    public var rateLimitPerSecond: Int
    /// Hosts a webhook may be delivered to (`CLOUDBILL_WEBHOOK_ALLOWED_HOSTS`, comma-separated).
    public var webhookAllowedHosts: Set<String>

    public init(
        hostname: String = "127.0.0.1",
        port: Int,
        tenantLabelLimit: Int = 1000,
        logLevel: String = "info",
        internalToken: String = ServiceConfiguration.demoInternalToken,
        adminToken: String = ServiceConfiguration.demoAdminToken,
        databaseURL: String = "postgres://cloudbill:cloudbill@127.0.0.1:5432/cloudbill",
        databasePoolSize: Int = 10,
        redisURL: String = "redis://127.0.0.1:6379",
        authURL: String = "http://127.0.0.1:3001",
        billingURL: String = "http://127.0.0.1:3002",
        paymentURL: String = "http://127.0.0.1:3003",
        notificationURL: String = "http://127.0.0.1:3004",
        rateLimitPerSecond: Int = 100,
        webhookAllowedHosts: Set<String> = ["127.0.0.1", "localhost"]
    ) {
        self.hostname = hostname
        self.port = port
        self.tenantLabelLimit = tenantLabelLimit
        self.logLevel = logLevel
        self.internalToken = internalToken
        self.adminToken = adminToken
        self.databaseURL = databaseURL
        self.databasePoolSize = databasePoolSize
        self.redisURL = redisURL
        self.authURL = authURL
        self.billingURL = billingURL
        self.paymentURL = paymentURL
        self.notificationURL = notificationURL
        self.rateLimitPerSecond = rateLimitPerSecond
        self.webhookAllowedHosts = webhookAllowedHosts
    }

    /// Reads the environment, then applies the command-line options.
    init(environment: [String: String], defaultPort: Int, overrides: ServiceOptions) throws {
        func text(_ name: String) -> String? {
            guard let value = environment[name], !value.isEmpty else { return nil }
            return value
        }
        func integer(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
            guard let value = text(name) else { return nil }
            guard let number = Int(value), range.contains(number) else {
                throw ValidationError("\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound), not '\(value)'")
            }
            return number
        }
        self.init(port: defaultPort)
        hostname = overrides.hostname ?? text("CLOUDBILL_HOST") ?? hostname
        port = try overrides.port ?? integer("PORT", in: 1...65535) ?? port
        tenantLabelLimit = try overrides.tenantLabelLimit ?? integer("CLOUDBILL_TENANT_LABEL_LIMIT", in: 0...1_000_000) ?? tenantLabelLimit
        logLevel = overrides.logLevel ?? text("LOG_LEVEL") ?? logLevel
        internalToken = text("CLOUDBILL_INTERNAL_TOKEN") ?? internalToken
        adminToken = text("CLOUDBILL_ADMIN_TOKEN") ?? adminToken
        databaseURL = text("DATABASE_URL") ?? databaseURL
        databasePoolSize = try integer("DB_POOL_SIZE", in: 1...500) ?? databasePoolSize
        redisURL = text("REDIS_URL") ?? redisURL
        authURL = text("AUTH_URL") ?? authURL
        billingURL = text("BILLING_URL") ?? billingURL
        paymentURL = text("PAYMENT_URL") ?? paymentURL
        notificationURL = text("NOTIFICATION_URL") ?? notificationURL
        rateLimitPerSecond = try integer("CLOUDBILL_RATE_LIMIT", in: 1...1_000_000) ?? rateLimitPerSecond
        if let hosts = text("CLOUDBILL_WEBHOOK_ALLOWED_HOSTS") {
            webhookAllowedHosts = Set(hosts.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
        }
        _ = try redisEndpoint
    }

    /// Host and port of `redisURL`.
    public var redisEndpoint: (host: String, port: Int) {
        get throws {
            guard let url = URL(string: redisURL), url.scheme == "redis", let host = url.host else {
                throw ValidationError("REDIS_URL must look like redis://host:port, not '\(redisURL)'")
            }
            return (host, url.port ?? 6379)
        }
    }
}
