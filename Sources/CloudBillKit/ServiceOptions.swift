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
        let environment = Environment.current
        let port = try self.port ?? environment.integer("PORT") ?? defaultPort
        let limit = try tenantLabelLimit ?? environment.integer("CLOUDBILL_TENANT_LABEL_LIMIT") ?? 1000
        guard (1...65535).contains(port) else { throw ValidationError("PORT must be between 1 and 65535") }
        guard limit >= 0 else { throw ValidationError("CLOUDBILL_TENANT_LABEL_LIMIT must not be negative") }
        return ServiceConfiguration(
            hostname: hostname ?? environment["CLOUDBILL_HOST"] ?? "127.0.0.1",
            port: port,
            tenantLabelLimit: limit,
            logLevel: logLevel ?? environment["LOG_LEVEL"] ?? "info",
            internalToken: environment["CLOUDBILL_INTERNAL_TOKEN"] ?? ServiceConfiguration.demoInternalToken
        )
    }
}

/// The settled configuration of a service.
public struct ServiceConfiguration: Sendable {
    /// The shared secret the gateway presents to the services when none is configured.
    /// Fit for a demo on one machine only.
    public static let demoInternalToken = "cloudbill-demo-internal-token"

    public var hostname: String
    public var port: Int
    public var tenantLabelLimit: Int
    public var logLevel: String
    /// The secret that proves a request came through the gateway.
    public var internalToken: String

    public init(
        hostname: String = "127.0.0.1",
        port: Int,
        tenantLabelLimit: Int = 1000,
        logLevel: String = "info",
        internalToken: String = ServiceConfiguration.demoInternalToken
    ) {
        self.hostname = hostname
        self.port = port
        self.tenantLabelLimit = tenantLabelLimit
        self.logLevel = logLevel
        self.internalToken = internalToken
    }
}

/// A read of the process environment.
struct Environment {
    let values: [String: String]

    static var current: Environment { Environment(values: ProcessInfo.processInfo.environment) }

    subscript(name: String) -> String? {
        guard let value = values[name], !value.isEmpty else { return nil }
        return value
    }

    func integer(_ name: String) throws -> Int? {
        guard let text = self[name] else { return nil }
        guard let value = Int(text) else { throw ValidationError("\(name) must be a whole number, not '\(text)'") }
        return value
    }
}
