import ArgumentParser
import CloudBillKit
import Hummingbird

@main
struct BillingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "BillingSvc",
        abstract: "CloudBill Billing service: customers and invoices, on port 3002."
    )

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let configuration = try options.resolved(defaultPort: 3002)
        let app = try buildApplication(configuration: configuration)
        try await app.runUntilTerminated(gracePeriod: configuration.shutdownGracePeriod)
    }
}
