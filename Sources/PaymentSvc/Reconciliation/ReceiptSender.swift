import CloudBillKit
import Foundation
import Logging
import ServiceLifecycle

/// Sends payment receipts to Notification off the request path.
///
/// A receipt is best effort: a succeeded payment stays succeeded whether or not its receipt
/// is queued. So the charge request never waits for Notification — it hands the receipt to
/// a bounded queue and answers. Were the call made inline, a stopped Notification would
/// cost every payment the client's connect retries up to the call's timeout, and the
/// payment service's latency would page for an outage that is not its own.
///
/// The queue holds at most ``capacity`` receipts; when it is full (Notification down or
/// slow for long) a new receipt is dropped and logged. At most ``concurrency`` receipts are
/// in flight at once. On graceful shutdown the queue stops taking receipts and what it holds
/// is sent, each within its timeout.
final class ReceiptSender: Service, Sendable {
    static let capacity = 1_000
    static let concurrency = 8

    private struct Item: Sendable {
        let receipt: PaymentReceipt
        let tenant: String
        let requestID: String
    }

    private let client: ServiceClient
    private let notificationURL: String
    private let logger: Logger
    private let stream: AsyncStream<Item>
    private let continuation: AsyncStream<Item>.Continuation

    init(client: ServiceClient, notificationURL: String, logger: Logger) {
        self.client = client
        self.notificationURL = notificationURL
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingOldest(Self.capacity))
    }

    /// Queues the receipt of a succeeded payment; never waits.
    func enqueue(_ payment: Payment, tenant: String, requestID: String) {
        let receipt = PaymentReceipt(paymentID: payment.id, invoiceID: payment.invoiceID, amountCents: payment.amountCents, currency: payment.currency)
        switch continuation.yield(Item(receipt: receipt, tenant: tenant, requestID: requestID)) {
        case .enqueued:
            break
        case .dropped:
            logger.warning("receipt dropped: the receipt queue is full", metadata: ["payment": "\(payment.id)", "capacity": "\(Self.capacity)"])
        case .terminated:
            logger.warning("receipt dropped: the service is stopping", metadata: ["payment": "\(payment.id)"])
        @unknown default:
            break
        }
    }

    func run() async throws {
        let continuation = self.continuation
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                var inFlight = 0
                for await item in stream {
                    if inFlight == Self.concurrency {
                        await group.next()
                        inFlight -= 1
                    }
                    group.addTask { await self.send(item) }
                    inFlight += 1
                }
            }
        } onGracefulShutdown: {
            continuation.finish()
        }
    }

    private func send(_ item: Item) async {
        do {
            let response = try await client.sendJSON(
                .post, notificationURL, "/internal/receipts", service: "notification-service",
                tenant: item.tenant, requestID: item.requestID, json: item.receipt, timeout: .seconds(2)
            )
            if response.status.kind != .successful {
                logger.warning("receipt not queued", metadata: ["payment": "\(item.receipt.paymentID)", "status": "\(response.status.code)"])
            }
        } catch {
            logger.warning("receipt not queued", metadata: ["payment": "\(item.receipt.paymentID)", "error": "\(error)"])
        }
    }
}
