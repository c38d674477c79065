import ArgumentParser
import CloudBillKit
import Hummingbird

@main
struct PaymentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "PaymentSvc",
        abstract: "CloudBill Payment service: charges through a simulated card processor, on port 3003."
    )

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let configuration = try options.resolved(defaultPort: 3003)
        let app = try buildApplication(configuration: configuration)
        try await app.runUntilTerminated(gracePeriod: configuration.shutdownGracePeriod)
    }
}
