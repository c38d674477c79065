import CloudBillInstrumentation
import CloudBillKit
import CloudBillStorage
import Foundation

struct Notification: Codable, Sendable {
    let id: UUID
    let tenantID: String
    let type: BusinessMetrics.NotificationType
    let recipient: String
    let subject: String?
    let body: String
    let status: String
    let attempts: Int
    let lastError: String?
    let createdAt: Date
    let deliveredAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, type, recipient, subject, body, status, attempts
        case tenantID = "tenant_id"
        case lastError = "last_error"
        case createdAt = "created_at"
        case deliveredAt = "delivered_at"
    }
}

extension BusinessMetrics.NotificationType: Codable {}

struct NotificationRepository: Sendable {
    let database: ConnectionPool

    func create(tenant: String, type: BusinessMetrics.NotificationType, recipient: String, subject: String?, body: String) async throws -> Notification {
        let rows = try await database.query(
            "insert_notification", tenant: tenant,
            """
            INSERT INTO notifications (id, tenant_id, type, recipient, subject, body, status)
            VALUES ($1, $2, $3, $4, $5, $6, 'queued') RETURNING \(Self.columns)
            """,
            [UUID(), tenant, type.rawValue, recipient, subject, body]
        )
        guard let row = rows.first else { throw DatabaseError.queryFailed(sqlState: "P0002") }
        return try Self.notification(row)
    }

    func notification(tenant: String, id: UUID) async throws -> Notification? {
        let rows = try await database.query(
            "select_notification", tenant: tenant, "SELECT \(Self.columns) FROM notifications WHERE id = $1 AND tenant_id = $2", [id, tenant]
        )
        return try rows.first.map(Self.notification)
    }

    /// Claims up to `limit` queued notifications, oldest first, for `lease`: rows another
    /// deliverer holds are skipped (`FOR UPDATE SKIP LOCKED`), and a lease that ran out (its
    /// deliverer died) makes the row claimable again.
    func claimQueued(limit: Int, lease: Duration) async throws -> [Notification] {
        try await database.query(
            "claim_notifications", tenant: nil,
            """
            UPDATE notifications SET lease_until = now() + $2 * interval '1 millisecond'
            WHERE id IN (
                SELECT id FROM notifications
                WHERE status = 'queued' AND (lease_until IS NULL OR lease_until < now())
                ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED
            )
            RETURNING \(Self.columns)
            """,
            [limit, Int64(lease.components.seconds * 1000)]
        ).map(Self.notification)
    }

    /// How many notifications wait for delivery.
    func backlog() async throws -> Int {
        try await database.query(
            "count_queued_notifications", tenant: nil, "SELECT count(*) FROM notifications WHERE status = 'queued'"
        ).first?.decode(Int.self, at: 0) ?? 0
    }

    func recordOutcome(_ notification: Notification, delivered: Bool, attempts: Int, error: String?) async throws {
        try await database.execute(
            "update_notification", tenant: notification.tenantID,
            """
            UPDATE notifications SET status = $3, attempts = $4, last_error = $5, lease_until = NULL,
                delivered_at = CASE WHEN $3 = 'sent' THEN now() END
            WHERE id = $1 AND tenant_id = $2 AND status = 'queued'
            """,
            [notification.id, notification.tenantID, delivered ? "sent" : "failed", attempts, error]
        )
    }

    static let columns = "id, tenant_id, type, recipient, subject, body, status, attempts, last_error, created_at, delivered_at"

    static func notification(_ row: PostgresRow) throws -> Notification {
        Notification(
            id: try row.decode(UUID.self, at: 0), tenantID: try row.decode(String.self, at: 1),
            type: BusinessMetrics.NotificationType(rawValue: try row.decode(String.self, at: 2)) ?? .email,
            recipient: try row.decode(String.self, at: 3), subject: try row.decode(String?.self, at: 4),
            body: try row.decode(String.self, at: 5), status: try row.decode(String.self, at: 6),
            attempts: try row.decode(Int.self, at: 7), lastError: try row.decode(String?.self, at: 8),
            createdAt: try row.decode(Date.self, at: 9), deliveredAt: try row.decode(Date?.self, at: 10)
        )
    }
}
