import AsyncHTTPClient
import CloudBillInstrumentation
import CloudBillKit
import Foundation
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Why one delivery attempt failed.
struct DeliveryFailure: Error, Sendable {
    let reason: String
    /// Whether trying again may succeed.
    let isRetryable: Bool
}

/// The simulated e-mail and SMS providers: they take the time real ones take.
struct SimulatedProvider: Sendable {
    let latency: ClosedRange<Int>

    static let email = SimulatedProvider(latency: 30...120)
    static let sms = SimulatedProvider(latency: 60...200)

    func send(to recipient: String, subject: String?, body: String) async throws {
        try await Task.sleep(for: .milliseconds(Int.random(in: latency)))
    }
}

/// Posts webhooks: real HTTP requests with a timeout, never carrying CloudBill's internal
/// headers.
final class WebhookSender: Service, Sendable {
    let http: HTTPClient
    let timeout: Duration
    /// The origins webhooks may go to; checked again before every attempt.
    let allowedOrigins: Set<WebhookOrigin>

    init(eventLoopGroup: any EventLoopGroup, allowedOrigins: Set<WebhookOrigin>, timeout: Duration = .seconds(2)) {
        self.allowedOrigins = allowedOrigins
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(1), read: .seconds(2))
        http = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
        self.timeout = timeout
    }

    func run() async throws {
        try? await gracefulShutdown()
        try await http.shutdown()
    }

    func post(_ url: String, json: Data) async throws(DeliveryFailure) {
        // Checked at delivery time too: the allow-list may have changed since the request,
        // and a host name may now resolve to an internal address (DNS rebinding).
        let allowedOrigins = self.allowedOrigins
        let refusal = try? await NIOThreadPool.singleton.runIfActive {
            WebhookURL.deliveryRefusal(url, allowedOrigins: allowedOrigins)
        }
        if let refusal {
            throw DeliveryFailure(reason: "webhook refused: \(refusal ?? "unknown")", isRetryable: false)
        }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "CloudBill-Webhooks/1")
        request.body = .bytes(ByteBuffer(bytes: json))
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .milliseconds(Int64(timeout.seconds * 1000)))
            _ = try await response.body.collect(upTo: 64 * 1024)
        } catch {
            throw DeliveryFailure(reason: "webhook unreachable or timed out", isRetryable: true)
        }
        switch response.status.code {
        case 200..<300: return
        case 408, 429, 500..<600: throw DeliveryFailure(reason: "webhook answered \(response.status.code)", isRetryable: true)
        default: throw DeliveryFailure(reason: "webhook answered \(response.status.code)", isRetryable: false)
        }
    }
}
