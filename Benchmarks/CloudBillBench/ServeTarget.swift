import ArgumentParser
import CloudBillInstrumentation
import CloudBillKit
import Foundation
import Hummingbird
import NIOPosix

/// `GET /hello` behind nothing, behind the metrics middleware only, or behind the full
/// middleware chain of a CloudBill service: the reference points `scripts/bench` drives with
/// wrk next to the fleet's own routes.
struct ServeTarget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve GET /hello with no middleware (bare), the metrics middleware only, or a service's full chain."
    )

    enum Chain: String, ExpressibleByArgument, CaseIterable {
        case bare, metrics, full
    }

    @Option(help: "bare | metrics | full")
    var chain: Chain = .bare

    @Option(help: "Port on 127.0.0.1.")
    var port = 8090

    func run() async throws {
        let address = BindAddress.hostname("127.0.0.1", port: port)
        switch chain {
        case .bare:
            let router = Router()
            router.get("/hello") { _, _ in "hello" }
            try await Application(router: router, configuration: .init(address: address, serverName: "bare"))
                .runService()
        case .metrics:
            let metrics = ServiceMetrics(service: "bench-service")
            let router = Router(context: CloudBillRequestContext.self)
            router.add(middleware: HTTPMetricsMiddleware(metrics: metrics))
            router.get("/hello") { _, _ in "hello" }
            router.get("/metrics") { _, _ in
                Response(status: .ok, headers: [.contentType: ServiceMetrics.contentType], body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
            }
            try await Application(router: router, configuration: .init(address: address, serverName: "metrics"))
                .runService()
        case .full:
            // Secrets of its own: nothing here accepts the published demo values.
            let configuration = ServiceConfiguration(
                port: port,
                logLevel: "warning",
                internalToken: UUID().uuidString + UUID().uuidString,
                adminToken: UUID().uuidString + UUID().uuidString
            )
            let service = try ServiceApplication(name: "bench-service", configuration: configuration)
            service.router.get("/hello") { _, _ in "hello" }
            try await service.makeApplication().runService()
        }
    }
}
