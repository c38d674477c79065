import CloudBillKit
import Hummingbird

/// The `service` label value of this service.
let serviceName = "billing-service"

/// Builds the application as it runs; tests build it through here too.
func buildApplication(configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    let service = try ServiceApplication(
        name: serviceName, configuration: configuration, storage: .postgresAndRedis(migrations: BillingSchema.migrations),
        domainFaults: [.invoiceFailures]
    )
    BillingController(
        repository: BillingRepository(database: service.requireDatabase, cache: service.requireCache),
        metrics: service.metrics.business,
        faults: service.faults,
        internalTokens: configuration.acceptedInternalTokens
    ).addRoutes(to: service.router)
    return service.makeApplication()
}
