import CloudBillInstrumentation
import CloudBillKit
import Foundation
import Logging
import ServiceLifecycle

/// Delivers queued notifications in the background, a bounded number at a time.
///
/// Every notification is stored as `queued` before it is offered here, so nothing is lost:
/// on start the queue picks up what an earlier process left, and on shutdown it stops
/// taking new work and finishes what it holds.
final class DeliveryQueue: Service, Sendable {
    private let stream: AsyncStream<Notification>
    private let continuation: AsyncStream<Notification>.Continuation
    let repository: NotificationRepository
    let webhooks: WebhookSender
    let metrics: BusinessMetrics
    let faults: FaultInjector
    let logger: Logger
    let concurrency: Int
    /// Webhook attempts, and the pause before the second; each later pause doubles.
    let webhookAttempts = 3
    let firstBackoff: Duration = .milliseconds(200)

    init(
        repository: NotificationRepository, webhooks: WebhookSender, metrics: BusinessMetrics, faults: FaultInjector,
        logger: Logger, concurrency: Int = 8
    ) {
        (stream, continuation) = AsyncStream.makeStream(of: Notification.self)
        self.repository = repository
        self.webhooks = webhooks
        self.metrics = metrics
        self.faults = faults
        self.logger = logger
        self.concurrency = concurrency
    }

    func enqueue(_ notification: Notification) {
        continuation.yield(notification)
    }

    func run() async throws {
        if let leftovers = try? await repository.queued(limit: 10_000) {
            leftovers.forEach(enqueue)
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                var running = 0
                for await notification in stream {
                    if running >= concurrency {
                        await group.next()  // bound the work in flight
                        running -= 1
                    }
                    running += 1
                    group.addTask { await self.deliver(notification) }
                }
            }
        } onGracefulShutdown: {
            self.continuation.finish()
        }
    }

    /// Delivers one notification and records the outcome in PostgreSQL and the metrics.
    func deliver(_ notification: Notification) async {
        // Injected fault `notification_failures`: the channel's provider is down for this
        // notification, so every attempt fails (webhooks still retry with backoff).
        let isProviderDown = faults.shouldFailDelivery(on: notification.type)
        var attempts = 0
        var failure: DeliveryFailure?
        repeat {
            attempts += 1
            do {
                if isProviderDown {
                    throw DeliveryFailure(reason: "\(notification.type.rawValue) provider unavailable (injected fault)", isRetryable: true)
                }
                try await attempt(notification)
                failure = nil
            } catch let error as DeliveryFailure {
                failure = error
                guard error.isRetryable, notification.type == .webhook, attempts < webhookAttempts else { break }
                try? await Task.sleep(for: firstBackoff * (1 << (attempts - 1)))
            } catch {
                failure = DeliveryFailure(reason: "delivery interrupted", isRetryable: false)
                break
            }
        } while failure != nil && attempts < webhookAttempts
        if let failure {
            metrics.notificationFailed(notification.type, tenant: notification.tenantID)
            logger.warning("notification failed", metadata: ["id": "\(notification.id)", "reason": "\(failure.reason)"])
        } else {
            metrics.notificationSent(notification.type, tenant: notification.tenantID)
        }
        do {
            try await repository.recordOutcome(notification, delivered: failure == nil, attempts: attempts, error: failure?.reason)
        } catch {
            logger.error("notification outcome not stored", metadata: ["id": "\(notification.id)", "error": "\(error)"])
        }
    }

    private func attempt(_ notification: Notification) async throws {
        switch notification.type {
        case .email:
            try await SimulatedProvider.email.send(to: notification.recipient, subject: notification.subject, body: notification.body)
        case .sms:
            try await SimulatedProvider.sms.send(to: notification.recipient, subject: nil, body: notification.body)
        case .webhook:
            let payload = WebhookPayload(
                id: notification.id, tenantID: notification.tenantID, subject: notification.subject,
                body: notification.body, createdAt: notification.createdAt
            )
            let data = (try? JSONEncoder.iso8601Sorted.encode(payload)) ?? Data()
            try await webhooks.post(notification.recipient, json: data)
        }
    }

    struct WebhookPayload: Encodable {
        let id: UUID
        let tenantID: String
        let subject: String?
        let body: String
        let createdAt: Date
        enum CodingKeys: String, CodingKey {
            case id, subject, body
            case tenantID = "tenant_id"
            case createdAt = "created_at"
        }
    }
}

extension JSONEncoder {
    static var iso8601Sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
