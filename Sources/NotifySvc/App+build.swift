import CloudBillKit
import Hummingbird

/// The `service` label value of this service.
let serviceName = "notification-service"

/// Builds the application as it runs; tests build it through here too.
func buildApplication(configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    var service = try ServiceApplication(
        name: serviceName, configuration: configuration, storage: .postgresAndRedis(migrations: NotificationSchema.migrations),
        domainFaults: [.notificationFailures]
    )
    let repository = NotificationRepository(database: service.requireDatabase)
    let webhooks = WebhookSender(eventLoopGroup: service.eventLoopGroup, allowedOrigins: configuration.webhookAllowedOrigins)
    let queue = DeliveryQueue(
        repository: repository, webhooks: webhooks, metrics: service.metrics.business, faults: service.faults, logger: service.logger,
        schemaReady: service.schemaReady
    )
    service.services += [webhooks, queue]
    NotificationController(
        repository: repository, queue: queue, client: service.client, cache: service.requireCache, configuration: configuration
    ).addRoutes(to: service.router)
    return service.makeApplication()
}
