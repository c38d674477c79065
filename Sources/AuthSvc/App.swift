import ArgumentParser
import CloudBillKit
import Hummingbird

@main
struct AuthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "AuthSvc",
        abstract: "CloudBill Auth service: tenants, API keys and tokens, on port 3001."
    )

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let configuration = try options.resolved(defaultPort: 3001)
        let app = try buildApplication(configuration: configuration)
        try await app.runUntilTerminated(gracePeriod: configuration.shutdownGracePeriod)
    }
}
