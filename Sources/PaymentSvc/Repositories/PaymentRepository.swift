import CloudBillKit
import CloudBillStorage
import Foundation

struct Payment: Codable, Sendable {
    let id: UUID
    let invoiceID: UUID
    let paymentMethod: String
    let status: String
    let amountCents: Int64?
    let currency: String?
    let failureReason: String?
    let createdAt: Date

    enum CodingKeys: String, CodingKey {
        case id, status, currency
        case invoiceID = "invoice_id"
        case paymentMethod = "payment_method"
        case amountCents = "amount_cents"
        case failureReason = "failure_reason"
        case createdAt = "created_at"
    }
}

/// What claiming an idempotency key found.
enum Claim {
    /// The key is new: this caller processes the payment.
    case claimed(id: UUID)
    /// The key was used before with the same request: its payment, maybe still processing.
    case replay(Payment)
    /// The key was used before with another request.
    case keyReused
    /// Another payment of the invoice is in flight or has succeeded.
    case invoiceBusy
}

struct PaymentRepository: Sendable {
    let database: ConnectionPool

    /// Claims `key` for this request: the unique keys make concurrent duplicates see one winner.
    func claim(tenant: String, key: String, fingerprint: String, invoiceID: UUID, method: String) async throws -> Claim {
        let id = UUID()
        do {
            let inserted = try await database.query(
                "claim_payment", tenant: tenant,
                """
                INSERT INTO payments (id, tenant_id, idempotency_key, request_fingerprint, invoice_id, payment_method, status)
                VALUES ($1, $2, $3, $4, $5, $6, 'processing')
                ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id
                """,
                [id, tenant, key, fingerprint, invoiceID, method]
            )
            if !inserted.isEmpty { return .claimed(id: id) }
        } catch DatabaseError.constraintViolated(_, let constraint) where constraint == "payments_one_live_per_invoice" {
            return .invoiceBusy
        }
        let rows = try await database.query(
            "select_payment_by_key", tenant: tenant,
            "SELECT request_fingerprint, \(Self.columns) FROM payments WHERE tenant_id = $1 AND idempotency_key = $2",
            [tenant, key]
        )
        guard let row = rows.first else { return .keyReused }  // the row's claim was released meanwhile
        guard try row.decode(String.self, at: 0) == fingerprint else { return .keyReused }
        return .replay(try Self.payment(row, offset: 1))
    }

    /// Gives a claim back when the payment could not start, so the key can be used again.
    func release(tenant: String, id: UUID) async throws {
        try await database.execute(
            "release_payment", tenant: tenant, "DELETE FROM payments WHERE id = $1 AND tenant_id = $2 AND status = 'processing'",
            [id, tenant]
        )
    }

    /// Records the processor's outcome of a claimed payment. A success writes the invoice's
    /// outbox entry in the same transaction, so its invoice is marked paid even if this
    /// process dies right after. When the payment was settled meanwhile (by the reconciler),
    /// the stored payment is returned unchanged; nil when its claim is gone.
    func complete(tenant: String, id: UUID, status: String, amountCents: Int64?, currency: String?, failureReason: String?) async throws -> Payment? {
        try await database.withTransaction(tenant: tenant) { tx in
            let rows = try await tx.query(
                "complete_payment",
                """
                UPDATE payments SET status = $3, amount_cents = $4, currency = $5, failure_reason = $6, completed_at = now()
                WHERE id = $1 AND tenant_id = $2 AND status = 'processing' RETURNING \(Self.columns)
                """,
                [id, tenant, status, amountCents, currency, failureReason]
            )
            guard let row = rows.first else {
                return try await tx.query(
                    "select_payment", "SELECT \(Self.columns) FROM payments WHERE id = $1 AND tenant_id = $2", [id, tenant]
                ).first.map { try Self.payment($0, offset: 0) }
            }
            let payment = try Self.payment(row, offset: 0)
            if status == "succeeded" {
                try await tx.execute(
                    "insert_payment_outbox",
                    "INSERT INTO payment_outbox (payment_id, tenant_id, invoice_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    [id, tenant, payment.invoiceID]
                )
            }
            return payment
        }
    }

    /// A payment still `processing` past the reconciler's bound.
    struct StalePayment: Sendable {
        let id: UUID
        let tenantID: String
    }

    /// Payments that have been `processing` for longer than `age`: their request died or
    /// lost track of them.
    func stale(olderThan age: Duration, limit: Int) async throws -> [StalePayment] {
        try await database.query(
            "select_stale_payments", tenant: nil,
            """
            SELECT id, tenant_id FROM payments
            WHERE status = 'processing' AND created_at < now() - $1 * interval '1 millisecond'
            ORDER BY created_at LIMIT $2
            """,
            [Int64(age.components.seconds * 1000 + age.components.attoseconds / 1_000_000_000_000_000), limit]
        ).map { StalePayment(id: try $0.decode(UUID.self, at: 0), tenantID: try $0.decode(String.self, at: 1)) }
    }

    /// An invoice still to be marked paid.
    struct OutboxEntry: Sendable {
        let paymentID: UUID
        let tenantID: String
        let invoiceID: UUID
        let attempts: Int
    }

    /// Outbox entries whose next attempt is due, oldest first.
    func dueOutboxEntries(limit: Int) async throws -> [OutboxEntry] {
        try await database.query(
            "select_payment_outbox", tenant: nil,
            "SELECT payment_id, tenant_id, invoice_id, attempts FROM payment_outbox WHERE next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1",
            [limit]
        ).map {
            OutboxEntry(
                paymentID: try $0.decode(UUID.self, at: 0), tenantID: try $0.decode(String.self, at: 1),
                invoiceID: try $0.decode(UUID.self, at: 2), attempts: try $0.decode(Int.self, at: 3)
            )
        }
    }

    /// The outbox entry of `paymentID`, once its invoice is settled.
    func removeOutboxEntry(_ paymentID: UUID, tenant: String) async throws {
        try await database.execute("delete_payment_outbox", tenant: tenant, "DELETE FROM payment_outbox WHERE payment_id = $1", [paymentID])
    }

    /// Schedules another attempt after `delay`.
    func postponeOutboxEntry(_ paymentID: UUID, tenant: String, delay: Duration, error: String) async throws {
        try await database.execute(
            "postpone_payment_outbox", tenant: tenant,
            """
            UPDATE payment_outbox SET attempts = attempts + 1, last_error = $2,
                next_attempt_at = now() + $3 * interval '1 millisecond'
            WHERE payment_id = $1
            """,
            [paymentID, error, Int64(delay.components.seconds * 1000)]
        )
    }

    func payment(tenant: String, id: UUID) async throws -> Payment? {
        let rows = try await database.query(
            "select_payment", tenant: tenant, "SELECT \(Self.columns) FROM payments WHERE id = $1 AND tenant_id = $2", [id, tenant]
        )
        return try rows.first.map { try Self.payment($0, offset: 0) }
    }

    static let columns = "id, invoice_id, payment_method, status, amount_cents, currency, failure_reason, created_at"

    static func payment(_ row: PostgresRow, offset: Int) throws -> Payment {
        Payment(
            id: try row.decode(UUID.self, at: offset), invoiceID: try row.decode(UUID.self, at: offset + 1),
            paymentMethod: try row.decode(String.self, at: offset + 2), status: try row.decode(String.self, at: offset + 3),
            amountCents: try row.decode(Int64?.self, at: offset + 4), currency: try row.decode(String?.self, at: offset + 5),
            failureReason: try row.decode(String?.self, at: offset + 6), createdAt: try row.decode(Date.self, at: offset + 7)
        )
    }
}
