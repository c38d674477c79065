import CloudBillKit
import Hummingbird

/// The `service` label value of this service.
let serviceName = "auth-service"

/// Builds the application as it runs; tests build it through here too.
func buildApplication(configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    let service = try ServiceApplication(
        name: serviceName, configuration: configuration, storage: .postgresAndRedis(migrations: AuthSchema.migrations)
    )
    let repository = CredentialRepository(database: service.requireDatabase, cache: service.requireCache, tokenLifetime: .seconds(900))
    AuthController(
        repository: repository,
        admin: AdminAuthorization(token: configuration.adminToken),
        internalToken: configuration.internalToken,
        webhookAllowedHosts: configuration.webhookAllowedHosts
    ).addRoutes(to: service.router)
    return service.makeApplication()
}
