import CloudBillInstrumentation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The parts every CloudBill service is made of, put together in one place so that the five
/// services differ only in their own routes.
public struct ServiceApplication {
    public let name: String
    public let configuration: ServiceConfiguration
    public let metrics: ServiceMetrics
    public let logger: Logger
    public let eventLoopGroup: any EventLoopGroup
    public let router: Router<CloudBillRequestContext>
    /// Long-lived resources run by the application's service group around the server.
    public var services: [any Service]

    /// - Parameters:
    ///   - name: the `service` label value, for example `auth-service`.
    ///   - databasePool: whether the service owns a PostgreSQL pool.
    public init(name: String, configuration: ServiceConfiguration, databasePool: Bool = true) {
        var logger = Logger(label: name)
        logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
        let metrics = ServiceMetrics(service: name, tenantLimit: configuration.tenantLabelLimit, databasePool: databasePool)
        let group = MultiThreadedEventLoopGroup.singleton
        let router = Router(context: CloudBillRequestContext.self)
        // Outermost first: the request id is known to everything below it, the metrics see
        // the final status of every response, errors become JSON before metrics see them,
        // and identity is settled before any handler runs.
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: HTTPMetricsMiddleware(metrics: metrics))
        router.add(middleware: ErrorResponseMiddleware())
        router.add(middleware: InternalIdentityMiddleware(internalToken: configuration.internalToken))

        router.get("/health") { _, _ in
            HealthStatus(status: "ok", service: name)
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: ServiceMetrics.contentType],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition()))
            )
        }

        self.name = name
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.eventLoopGroup = group
        self.router = router
        self.services = [EventLoopLagMonitor(group: group, metrics: metrics)]
    }

    /// The Hummingbird application serving the router on the configured address.
    public func makeApplication() -> some ApplicationProtocol {
        Application(
            router: router,
            configuration: .init(
                address: .hostname(configuration.hostname, port: configuration.port),
                serverName: name
            ),
            services: services,
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: logger
        )
    }
}

/// The body of `GET /health`: the process is up and serving.
public struct HealthStatus: ResponseCodable {
    public let status: String
    public let service: String
}
