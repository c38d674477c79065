import ArgumentParser
import CloudBillKit
import Hummingbird

@main
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "Gateway",
        abstract: "CloudBill API gateway: the public API on port 8080."
    )

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let configuration = try options.resolved(defaultPort: 8080)
        let app = try buildApplication(configuration: configuration)
        try await app.runUntilTerminated(gracePeriod: configuration.shutdownGracePeriod)
    }
}
