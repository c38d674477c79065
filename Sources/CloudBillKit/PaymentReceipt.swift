import Foundation

/// What Payment sends Notification's `POST /internal/receipts` after a charge succeeds:
/// one definition of the contract, used by both sides.
public struct PaymentReceipt: Codable, Sendable {
    public let paymentID: UUID
    public let invoiceID: UUID
    public let amountCents: Int64?
    public let currency: String?

    public init(paymentID: UUID, invoiceID: UUID, amountCents: Int64?, currency: String?) {
        self.paymentID = paymentID
        self.invoiceID = invoiceID
        self.amountCents = amountCents
        self.currency = currency
    }

    enum CodingKeys: String, CodingKey {
        case paymentID = "payment_id"
        case invoiceID = "invoice_id"
        case amountCents = "amount_cents"
        case currency
    }
}
