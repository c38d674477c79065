import CloudBillKit
import Hummingbird

/// The `service` label value of this service.
let serviceName = "auth-service"

/// Builds the application as it runs; tests build it through here too.
func buildApplication(configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    var service = try ServiceApplication(
        name: serviceName, configuration: configuration, storage: .postgresAndRedis(migrations: AuthSchema.migrations)
    )
    let repository = CredentialRepository(
        database: service.requireDatabase, cache: service.requireCache, tokenLifetime: .seconds(900), stalePurges: StaleCacheEntries()
    )
    service.services.append(CredentialJanitor(repository: repository, logger: service.logger, interval: .seconds(1), schemaReady: service.schemaReady))
    AuthController(
        repository: repository,
        admin: AdminAuthorization(token: configuration.adminToken),
        internalTokens: configuration.acceptedInternalTokens,
        webhookAllowedOrigins: configuration.webhookAllowedOrigins
    ).addRoutes(to: service.router)
    return service.makeApplication()
}
