import CloudBillKit
import Hummingbird

/// The `service` label value of this service.
let serviceName = "payment-service"

/// Builds the application as it runs; tests build it through here too.
func buildApplication(configuration: ServiceConfiguration) -> some ApplicationProtocol {
    let service = ServiceApplication(name: serviceName, configuration: configuration, databasePool: true)
    return service.makeApplication()
}
