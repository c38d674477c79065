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
        let app = try buildApplication(configuration: try options.resolved(defaultPort: 3003))
        try await app.runUntilTerminated()
    }
}
