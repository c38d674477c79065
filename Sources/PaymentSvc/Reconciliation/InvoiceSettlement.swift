import CloudBillKit
import Foundation
import Logging
import NIOCore

/// Marks the invoice of a succeeded payment paid, through the payment's outbox entry: the
/// entry is removed once Billing has the invoice paid, and kept for another attempt when
/// Billing cannot be reached.
struct InvoiceSettlement: Sendable {
    let repository: PaymentRepository
    let client: ServiceClient
    let billingURL: String
    let logger: Logger

    enum Outcome: Equatable {
        /// The invoice is paid, or can never be: the entry is done.
        case settled
        /// Try again later.
        case retry(reason: String)
    }

    /// Tries once; on success removes the outbox entry. Never throws: a failure leaves the
    /// entry for ``PaymentReconciler``.
    @discardableResult
    func settle(paymentID: UUID, invoiceID: UUID, tenant: String, requestID: String) async -> Outcome {
        let outcome = await markPaid(invoiceID, tenant: tenant, requestID: requestID)
        if outcome == .settled {
            do {
                try await repository.removeOutboxEntry(paymentID, tenant: tenant)
            } catch {
                logger.warning("outbox entry not removed; it is retried", metadata: ["payment": "\(paymentID)", "error": "\(error)"])
            }
        }
        return outcome
    }

    private func markPaid(_ invoiceID: UUID, tenant: String, requestID: String) async -> Outcome {
        do {
            let response = try await client.send(
                .post, billingURL, "/internal/invoices/\(invoiceID.uuidString.lowercased())/mark-paid",
                service: "billing-service", tenant: tenant, requestID: requestID
            )
            switch response.status.code {
            case 200:
                return .settled
            case 409:
                // Paid already (an earlier attempt got through), or no longer payable: either
                // way nothing more can be done here.
                let body = String(buffer: response.body)
                if !body.contains("is paid") {
                    logger.error("invoice of a succeeded payment cannot be marked paid", metadata: ["invoice": "\(invoiceID)", "answer": "\(body.prefix(200))"])
                }
                return .settled
            case 404:
                logger.error("invoice of a succeeded payment not found", metadata: ["invoice": "\(invoiceID)"])
                return .settled
            default:
                return .retry(reason: "billing-service answered \(response.status.code)")
            }
        } catch {
            return .retry(reason: "billing-service unreachable")
        }
    }
}
