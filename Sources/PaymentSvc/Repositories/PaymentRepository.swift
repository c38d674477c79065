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

    func complete(tenant: String, id: UUID, status: String, amountCents: Int64, currency: String, failureReason: String?) async throws -> Payment {
        let rows = try await database.query(
            "complete_payment", tenant: tenant,
            """
            UPDATE payments SET status = $3, amount_cents = $4, currency = $5, failure_reason = $6, completed_at = now()
            WHERE id = $1 AND tenant_id = $2 RETURNING \(Self.columns)
            """,
            [id, tenant, status, amountCents, currency, failureReason]
        )
        return try Self.payment(rows[0], offset: 0)
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
