import CloudBillInstrumentation
import CloudBillKit
import CloudBillStorage
import Foundation
import Logging
import ServiceLifecycle

/// Settles what an interrupted request left behind, every ``interval``:
///
/// - a payment `processing` for longer than ``staleAfter`` is settled from the processor's
///   record: voided when it was never charged (the claim is released, so the invoice can be
///   paid again), or completed with the recorded outcome;
/// - an invoice of a succeeded payment that is not marked paid yet (its outbox entry) is
///   marked again, with exponential backoff up to a minute.
///
/// `staleAfter` must exceed the slowest payment request (the gateway gives Payment 10 s),
/// so that a request still running is never settled under its feet; if one is, its own
/// charge finds the payment voided and it answers 409 `payment_interrupted`.
final class PaymentReconciler: Service, Sendable {
    let repository: PaymentRepository
    let processor: CardProcessor
    let settlement: InvoiceSettlement
    let metrics: BusinessMetrics
    let logger: Logger
    let staleAfter: Duration
    let interval: Duration
    let schemaReady: SchemaGate

    init(
        repository: PaymentRepository, processor: CardProcessor, settlement: InvoiceSettlement, metrics: BusinessMetrics,
        logger: Logger, staleAfter: Duration, interval: Duration = .seconds(1), schemaReady: SchemaGate
    ) {
        self.schemaReady = schemaReady
        self.repository = repository
        self.processor = processor
        self.settlement = settlement
        self.metrics = metrics
        self.logger = logger
        self.staleAfter = staleAfter
        self.interval = interval
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            guard (try? await self.schemaReady.wait()) != nil else { return }
            while !Task.isCancelled {
                await self.reconcileOnce()
                try? await Task.sleep(for: self.interval)
            }
        }
    }

    /// One pass over stale payments and due outbox entries; errors wait for the next pass.
    func reconcileOnce() async {
        do {
            for payment in try await repository.stale(olderThan: staleAfter, limit: 100) {
                try await settle(payment)
            }
            for entry in try await repository.dueOutboxEntries(limit: 100) {
                let outcome = await settlement.settle(
                    paymentID: entry.paymentID, invoiceID: entry.invoiceID, tenant: entry.tenantID, requestID: "reconciler"
                )
                if case .retry(let reason) = outcome {
                    let delay = Duration.seconds(min(60, 1 << min(entry.attempts, 6)))
                    try await repository.postponeOutboxEntry(entry.paymentID, tenant: entry.tenantID, delay: delay, error: reason)
                }
            }
        } catch {
            logger.warning("reconciliation pass failed; next pass retries", metadata: ["error": "\(error)"])
        }
    }

    private func settle(_ stale: PaymentRepository.StalePayment) async throws {
        let record = try await processor.void(paymentID: stale.id, tenant: stale.tenantID)
        switch record.outcome {
        case .voided:
            try await repository.release(tenant: stale.tenantID, id: stale.id)
            logger.notice("stale payment voided: it was never charged", metadata: ["payment": "\(stale.id)"])
        case .approved:
            let payment = try await repository.complete(
                tenant: stale.tenantID, id: stale.id, status: "succeeded", amountCents: record.amountCents, currency: record.currency,
                failureReason: nil
            )
            if let payment, payment.status == "succeeded" {
                metrics.paymentSucceeded(tenant: stale.tenantID)
                await settlement.settle(paymentID: stale.id, invoiceID: payment.invoiceID, tenant: stale.tenantID, requestID: "reconciler")
            }
            logger.notice("stale payment completed from the processor's record", metadata: ["payment": "\(stale.id)", "outcome": "approved"])
        case .declined(let reason):
            let payment = try await repository.complete(
                tenant: stale.tenantID, id: stale.id, status: "failed", amountCents: record.amountCents, currency: record.currency,
                failureReason: reason
            )
            if payment?.status == "failed" { metrics.paymentFailed(tenant: stale.tenantID, reason: reason) }
            logger.notice("stale payment completed from the processor's record", metadata: ["payment": "\(stale.id)", "outcome": "declined"])
        }
    }
}
