import CloudBillKit
import Hummingbird

/// The `service` label value of this service.
let serviceName = "api-gateway"

/// Builds the application as it runs; tests build it through here too.
func buildApplication(configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    let service = try ServiceApplication(name: serviceName, configuration: configuration, storage: .redis)
    ProxyController(
        client: service.client,
        verifier: TokenVerifier(client: service.client, authURL: configuration.authURL),
        limiter: RateLimiter(cache: service.requireCache, requestsPerSecond: configuration.rateLimitPerSecond),
        failures: FailedAuthenticationLimiter(limit: configuration.authFailureLimit),
        auth: Upstream(name: "auth-service", baseURL: configuration.authURL, timeout: .seconds(2)),
        billing: Upstream(name: "billing-service", baseURL: configuration.billingURL, timeout: .seconds(5)),
        payment: Upstream(name: "payment-service", baseURL: configuration.paymentURL, timeout: .seconds(10)),
        notification: Upstream(name: "notification-service", baseURL: configuration.notificationURL, timeout: .seconds(5))
    ).addRoutes(to: service.router)
    return service.makeApplication()
}
