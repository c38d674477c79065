import CloudBillInstrumentation
import CloudBillStorage
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The parts every CloudBill service is made of, put together in one place so that the five
/// services differ only in their own routes.
public struct ServiceApplication {
    /// The probe routes every service answers; their request series start at 0.
    public static let probeRoutes = ["/health", "/ready"]

    /// What a service keeps its state in.
    public enum Storage {
        /// Nothing of its own.
        case none
        /// Redis only (the gateway's rate limits and token cache).
        case redis
        /// PostgreSQL with these schema migrations, and Redis.
        case postgresAndRedis(migrations: [Migration])
    }

    public let name: String
    public let configuration: ServiceConfiguration
    public let metrics: ServiceMetrics
    public let logger: Logger
    public let eventLoopGroup: any EventLoopGroup
    public let router: Router<CloudBillRequestContext>
    /// The router's routes and their methods, for the 405 answers (filled by makeApplication).
    let routeTable: RouteTable
    /// The PostgreSQL pool, for services with a database.
    public let database: ConnectionPool?
    /// The Redis cache, for services that use one.
    public let cache: Cache?
    /// Calls to the other services.
    public let client: ServiceClient
    /// The faults injected through `/admin/faults`, for the code where a domain fault acts.
    public let faults: FaultInjector
    /// Long-lived resources run by the application's service group around the server.
    public var services: [any Service]
    /// Opens once the schema migrations are applied: background work that reads the
    /// service's tables waits for it (``SchemaGate/wait()``).
    public let schemaReady = SchemaGate()
    let migrations: [Migration]

    /// - Parameters:
    ///   - name: the `service` label value, for example `auth-service`.
    ///   - domainFaults: the faults of ``FaultKind/domainFaults`` this service's own code acts out.
    public init(name: String, configuration: ServiceConfiguration, storage: Storage = .none, domainFaults: Set<FaultKind> = []) throws {
        var logger = Logger(label: name)
        logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
        let usesDatabase: Bool
        let migrations: [Migration]
        switch storage {
        case .postgresAndRedis(let list): (usesDatabase, migrations) = (true, list)
        case .none, .redis: (usesDatabase, migrations) = (false, [])
        }
        let metrics = ServiceMetrics(service: name, tenantLimit: configuration.tenantLabelLimit, databasePool: usesDatabase)
        let group = MultiThreadedEventLoopGroup.singleton

        let database = usesDatabase
            ? ConnectionPool(
                configuration: .init(
                    connectionString: configuration.databaseURL,
                    maximumConnections: configuration.databasePoolSize,
                    applicationName: name
                ),
                metrics: metrics.database,
                logger: logger
            )
            : nil
        let cache: Cache?
        if case .none = storage {
            cache = nil
        } else {
            let endpoint = try configuration.redisEndpoint
            cache = Cache(
                configuration: .init(
                    host: endpoint.host, port: endpoint.port, user: endpoint.user, password: endpoint.password,
                    keyNamespace: Self.keyNamespace(of: name)
                ),
                metrics: metrics.cache, logger: logger
            )
        }
        let client = ServiceClient(eventLoopGroup: group, internalToken: configuration.internalToken)
        let faults = FaultInjector(
            metrics: metrics, database: database, cache: cache, eventLoopGroup: group,
            capabilities: FaultCapabilities(
                service: name, hasDatabase: database != nil, hasCache: cache != nil,
                maximumConnections: configuration.databasePoolSize,
                ballastLimitMegabytes: try FaultInjector.ballastLimitMegabytes(environment: ProcessInfo.processInfo.environment),
                domainFaults: domainFaults.intersection(FaultKind.domainFaults)
            ),
            logger: logger
        )

        let router = Router(context: CloudBillRequestContext.self)
        let routeTable = RouteTable()
        // Outermost first: the request id is known to everything below it, the metrics see
        // the final status of every response, errors become JSON before metrics see them,
        // a known path asked with another method gets 405 with Allow (not 404), identity is
        // settled before any handler runs, and injected faults act last, on a
        // request whose route and tenant are known (never on /admin/faults or the probes).
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: HTTPMetricsMiddleware(metrics: metrics))
        router.add(middleware: ErrorResponseMiddleware())
        router.add(middleware: MethodNotAllowedMiddleware(table: routeTable))
        router.add(middleware: InternalIdentityMiddleware(acceptedTokens: configuration.acceptedInternalTokens))
        router.add(middleware: FaultMiddleware(injector: faults))
        if configuration.faultsEnabled {
            FaultAdminController(injector: faults, admin: AdminAuthorization(token: configuration.adminToken)).addRoutes(to: router)
        }
        if configuration.isDemo {
            logger.warning("Demo mode (CLOUDBILL_DEMO): the published demo secrets are accepted; never run it like this in production")
        }
        if configuration.faultsEnabled {
            logger.notice("Fault injection is enabled (CLOUDBILL_FAULTS=on): /admin/faults answers, behind the admin token")
        }

        router.get("/health") { _, _ in
            HealthStatus(status: "ok", service: name)
        }
        router.get("/ready") { _, _ in
            var checks: [String: String] = [:]
            if let database {
                checks["postgres"] = (try? await database.query("ready", tenant: nil, "SELECT 1", timeout: .seconds(1))) != nil ? "ok" : "unavailable"
            }
            if let cache {
                checks["redis"] = await cache.ping() ? "ok" : "unavailable"
            }
            let ready = checks.values.allSatisfy { $0 == "ok" }
            return try JSONResponse.make(
                ReadinessStatus(status: ready ? "ready" : "not_ready", service: name, checks: checks),
                status: ready ? .ok : .serviceUnavailable
            )
        }
        // The probes are requests known to come: their series start at 0, so that the HTTP
        // families are there from the first scrape. (The scrape itself is not traffic.)
        for route in ServiceApplication.probeRoutes {
            metrics.http.prepare(method: "GET", route: route, status: 200, tenant: TenantLabelGuard.anonymousTenant)
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: ServiceMetrics.contentType],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition()))
            )
        }

        var services: [any Service] = [EventLoopLagMonitor(group: group, metrics: metrics), client, faults]
        if let database { services.append(database) }
        if let cache { services.append(cache) }

        self.name = name
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.eventLoopGroup = group
        self.router = router
        self.routeTable = routeTable
        self.database = database
        self.cache = cache
        self.client = client
        self.faults = faults
        self.services = services
        self.migrations = migrations
    }

    /// The pool, for routes of a service built with a database.
    public var requireDatabase: ConnectionPool {
        guard let database else { preconditionFailure("\(name) was built without a database") }
        return database
    }

    /// The cache, for routes of a service built with Redis.
    public var requireCache: Cache {
        guard let cache else { preconditionFailure("\(name) was built without Redis") }
        return cache
    }

    /// The Hummingbird application serving the router on the configured address. A service
    /// with a database applies its migrations before it starts listening, retrying while
    /// PostgreSQL is not reachable yet.
    public func makeApplication() -> some ApplicationProtocol {
        faults.registerRoutes(Set(router.routes.map { $0.path.description }.filter { !FaultMiddleware.isExempt($0) }))
        routeTable.load(router.routes)
        var app = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .init(configuration.idleTimeout))),
            configuration: .init(
                address: .hostname(configuration.hostname, port: configuration.port),
                serverName: name
            ),
            services: services,
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: logger
        )
        if let database, !migrations.isEmpty {
            let all = ((try? Migration.bundled()) ?? []) + migrations
            let logger = self.logger
            let schemaReady = self.schemaReady
            app.beforeServerStarts {
                try await Self.migrate(database, all, logger: logger)
                schemaReady.open()
            }
        } else {
            schemaReady.open()
        }
        return app
    }

    /// The prefix of every Redis key a service writes; `cache_flush` never reaches past it.
    static func keyNamespace(of service: String) -> String {
        switch service {
        case "api-gateway": "gateway:"
        case "notification-service": "notify:"
        default: String(service.prefix { $0 != "-" }) + ":"
        }
    }

    static func migrate(_ database: ConnectionPool, _ migrations: [Migration], logger: Logger) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do {
                let applied = try await database.migrate(migrations)
                if !applied.isEmpty { logger.info("Schema migrated", metadata: ["versions": "\(applied)"]) }
                return
            } catch DatabaseError.connectionUnavailable where ContinuousClock.now < deadline {
                logger.warning("PostgreSQL is not reachable yet; retrying the migrations in 1 s")
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}

/// The body of `GET /health`: the process is up and serving.
public struct HealthStatus: ResponseCodable {
    public let status: String
    public let service: String
}

/// The body of `GET /ready`: whether the service's dependencies answer.
public struct ReadinessStatus: ResponseCodable {
    public let status: String
    public let service: String
    public let checks: [String: String]
}

extension CloudBillRequestContext {
    /// The tenant the gateway vouched for; 401 when the request did not come through it.
    public func requireTenant() throws -> String {
        let tenant = attribution.tenant
        guard tenant != TenantLabelGuard.anonymousTenant else {
            throw APIError(.unauthorized, "This endpoint is reached through the API gateway with a bearer token.")
        }
        return tenant
    }
}

/// Checks the admin token of the admin API.
public struct AdminAuthorization: Sendable {
    public static let header = HTTPField.Name("X-Admin-Token")!
    let token: String

    public init(token: String) { self.token = token }

    /// Throws 401 unless the request carries the admin token.
    public func check(_ request: Request) throws {
        guard let presented = request.headers[Self.header], InternalIdentity.secretsMatch(presented, token) else {
            throw APIError(.unauthorized, "The admin API needs a valid X-Admin-Token header.")
        }
    }
}

extension ApplicationProtocol {
    /// Runs the application until SIGTERM or SIGINT, then shuts down gracefully: the server
    /// stops accepting, answers what it holds, and the pools close. A client that keeps a
    /// connection busy cannot hold the process past `gracePeriod`; then the rest is cancelled.
    public func runUntilTerminated(gracePeriod: Duration = .seconds(10)) async throws {
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: self)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        )
        configuration.maximumGracefulShutdownDuration = gracePeriod
        try await ServiceGroup(configuration: configuration).run()
    }
}

/// A flag that opens once and stays open.
public final class SchemaGate: Sendable {
    private let isOpen = Mutex(false)

    public init() {}

    public func open() { isOpen.withLock { $0 = true } }

    /// Returns once the gate is open; throws `CancellationError` when cancelled first.
    public func wait() async throws {
        while !isOpen.withLock({ $0 }) {
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
