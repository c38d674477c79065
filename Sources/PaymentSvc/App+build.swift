import CloudBillKit
import Hummingbird

/// The `service` label value of this service.
let serviceName = "payment-service"

/// Builds the application as it runs; tests build it through here too.
func buildApplication(configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    let service = try ServiceApplication(
        name: serviceName, configuration: configuration, storage: .postgresAndRedis(migrations: PaymentSchema.migrations),
        domainFaults: [.paymentDeclines, .processorErrors]
    )
    PaymentController(
        repository: PaymentRepository(database: service.requireDatabase),
        processor: CardProcessor(faults: service.faults),
        client: service.client,
        configuration: configuration,
        metrics: service.metrics.business
    ).addRoutes(to: service.router)
    return service.makeApplication()
}
