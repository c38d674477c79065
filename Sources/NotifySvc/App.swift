import ArgumentParser
import CloudBillKit
import Hummingbird

@main
struct NotifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "NotifySvc",
        abstract: "CloudBill Notification service: email, SMS and webhooks, on port 3004."
    )

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let configuration = try options.resolved(defaultPort: 3004)
        let app = try buildApplication(configuration: configuration)
        try await app.runUntilTerminated(gracePeriod: configuration.shutdownGracePeriod)
    }
}
