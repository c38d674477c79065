import CloudBillInstrumentation
import CloudBillKit
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Delivers queued notifications in the background, a bounded number at a time.
///
/// PostgreSQL is the queue: every notification is stored as `queued` before it is
/// accepted, and deliverers claim batches with a lease (`FOR UPDATE SKIP LOCKED`), so two
/// instances never send one notification at once and a crashed deliverer's claims come
/// back when their lease runs out. Memory holds one batch, never the backlog; when the
/// backlog passes ``maximumBacklog``, new notifications are refused with 503 (back-pressure).
final class DeliveryQueue: Service, Sendable {
    /// Set when work arrives, so the deliverer does not wait for its next poll.
    private let isWoken = Mutex(false)
    /// The backlog last measured.
    private let measuredBacklog = Mutex(0)
    let repository: NotificationRepository
    let webhooks: WebhookSender
    let metrics: BusinessMetrics
    let faults: FaultInjector
    let logger: Logger
    let concurrency: Int
    let maximumBacklog: Int
    let schemaReady: SchemaGate
    /// How long a claim holds a notification: longer than all of one delivery's attempts.
    let lease: Duration = .seconds(30)
    /// How often the store is polled when nothing woke the deliverer.
    let pollInterval: Duration = .seconds(1)
    /// Webhook attempts, and the pause before the second; each later pause doubles.
    let webhookAttempts = 3
    let firstBackoff: Duration = .milliseconds(200)

    init(
        repository: NotificationRepository, webhooks: WebhookSender, metrics: BusinessMetrics, faults: FaultInjector,
        logger: Logger, schemaReady: SchemaGate, concurrency: Int = 8, maximumBacklog: Int = 10_000
    ) {
        self.schemaReady = schemaReady
        self.repository = repository
        self.webhooks = webhooks
        self.metrics = metrics
        self.faults = faults
        self.logger = logger
        self.concurrency = concurrency
        self.maximumBacklog = maximumBacklog
    }

    /// Tells the deliverer a notification was stored.
    func notifyStored() {
        measuredBacklog.withLock { $0 += 1 }
        isWoken.withLock { $0 = true }
    }

    /// Whether the backlog is too long to take more work.
    var isFull: Bool { measuredBacklog.withLock { $0 } >= maximumBacklog }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            guard (try? await self.schemaReady.wait()) != nil else { return }
            while !Task.isCancelled {
                self.isWoken.withLock { $0 = false }
                let claimed = await self.deliverOneBatch()
                if claimed < self.concurrency {
                    // Nothing more due now: wait for new work or the next poll.
                    let deadline = ContinuousClock.now + self.pollInterval
                    while ContinuousClock.now < deadline, !self.isWoken.withLock({ $0 }) {
                        guard (try? await Task.sleep(for: .milliseconds(20))) != nil else { return }
                    }
                }
            }
        }
    }

    /// Claims and delivers one batch; returns how many it claimed.
    func deliverOneBatch() async -> Int {
        let batch: [Notification]
        do {
            if let backlog = try? await repository.backlog() { measuredBacklog.withLock { $0 = backlog } }
            batch = try await repository.claimQueued(limit: concurrency, lease: lease)
        } catch {
            logger.warning("notifications not claimed; retrying", metadata: ["error": "\(error)"])
            return 0
        }
        // A claimed batch is delivered to the end even when shutdown cancels the loop (an
        // unstructured task does not inherit the cancellation); a crash leaves the lease to run out.
        await Task {
            await withTaskGroup(of: Void.self) { group in
                for notification in batch { group.addTask { await self.deliver(notification) } }
            }
        }.value
        return batch.count
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
