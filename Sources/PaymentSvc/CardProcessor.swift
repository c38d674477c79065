import CloudBillKit
import CloudBillStorage
import Foundation

/// The simulated card processor: it takes time like a real one and answers by the test
/// payment method, unless an injected fault makes it fail (`processor_errors`) or decline
/// cards it would approve (`payment_declines`).
///
/// Like a real processor it is idempotent on the key it is given, the payment id, and keeps
/// its own record of each charge (table `processor_charges`): charging the same id again
/// answers the first outcome, and a payment voided by the reconciler can no longer be
/// charged. That record is what the reconciler asks after a crash.
struct CardProcessor: Sendable {
    enum Outcome: Equatable, Sendable {
        case approved
        case declined(reason: String)
        /// The reconciler gave the payment up before it was charged.
        case voided
    }

    /// The test payment methods and what the processor does with each.
    static let methods: [String: Outcome] = [
        "pm_ok": .approved,
        "pm_declined": .declined(reason: "card_declined"),
        "pm_processor_error": .declined(reason: "processor_error"),
    ]

    /// Processor latency: uniform in this range.
    let latency: ClosedRange<Int> = 20...80
    let faults: FaultInjector
    /// Where the processor keeps its records.
    let ledger: ConnectionPool

    /// What the processor recorded for a payment id.
    struct Record: Sendable {
        let outcome: Outcome
        let amountCents: Int64?
        let currency: String?
    }

    /// Charges `paymentID` once: a repeated call answers what the first recorded.
    func charge(paymentID: UUID, tenant: String, amountCents: Int64, currency: String, method: String) async throws -> Record {
        try await Task.sleep(for: .milliseconds(Int.random(in: latency)))
        var outcome = Self.methods[method] ?? .declined(reason: "unknown_payment_method")
        if faults.shouldInject(.processorErrors) {
            outcome = .declined(reason: "processor_error")
        } else if outcome == .approved, faults.shouldInject(.paymentDeclines) {
            outcome = .declined(reason: "card_declined")
        }
        return try await record(paymentID, tenant: tenant, outcome, amountCents: amountCents, currency: currency)
    }

    /// Voids `paymentID` unless it was charged: the answer is the record that stands.
    func void(paymentID: UUID, tenant: String) async throws -> Record {
        try await record(paymentID, tenant: tenant, .voided, amountCents: nil, currency: nil)
    }

    /// Writes the record for `paymentID` unless one exists; returns the one that stands.
    private func record(_ id: UUID, tenant: String, _ outcome: Outcome, amountCents: Int64?, currency: String?) async throws -> Record {
        let (name, reason): (String, String?) =
            switch outcome {
            case .approved: ("approved", nil)
            case .declined(let reason): ("declined", reason)
            case .voided: ("voided", nil)
            }
        let rows = try await ledger.query(
            "processor_charge", tenant: tenant,
            """
            WITH inserted AS (
                INSERT INTO processor_charges (payment_id, outcome, decline_reason, amount_cents, currency)
                VALUES ($1, $2, $3, $4, $5) ON CONFLICT (payment_id) DO NOTHING
                RETURNING outcome, decline_reason, amount_cents, currency
            )
            SELECT outcome, decline_reason, amount_cents, currency FROM inserted
            UNION ALL
            SELECT outcome, decline_reason, amount_cents, currency FROM processor_charges WHERE payment_id = $1
            LIMIT 1
            """,
            [id, name, reason, amountCents, currency]
        )
        guard let row = rows.first else { throw DatabaseError.queryFailed(sqlState: "P0002") }
        let stored: Outcome =
            switch try row.decode(String.self, at: 0) {
            case "approved": .approved
            case "declined": .declined(reason: try row.decode(String?.self, at: 1) ?? "processor_error")
            default: .voided
            }
        return Record(outcome: stored, amountCents: try row.decode(Int64?.self, at: 2), currency: try row.decode(String?.self, at: 3))
    }
}
