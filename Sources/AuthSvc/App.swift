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
        let app = try buildApplication(configuration: try options.resolved(defaultPort: 3001))
        try await app.runUntilTerminated()
    }
}
