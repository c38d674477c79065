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
        let app = try buildApplication(configuration: try options.resolved(defaultPort: 8080))
        try await app.runUntilTerminated()
    }
}
