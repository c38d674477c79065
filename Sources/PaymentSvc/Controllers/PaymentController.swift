import CloudBillInstrumentation
import CloudBillKit
import CloudBillStorage
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Payment's routes: charging open invoices, at most once per idempotency key.
struct PaymentController {
    let repository: PaymentRepository
    let processor: CardProcessor
    let settlement: InvoiceSettlement
    let receipts: ReceiptSender
    let client: ServiceClient
    let configuration: ServiceConfiguration
    let metrics: BusinessMetrics

    static let idempotencyHeader = HTTPField.Name("Idempotency-Key")!

    func addRoutes(to router: Router<CloudBillRequestContext>) {
        router.post("/api/v1/payments", use: createPayment)
        router.get("/api/v1/payments/{id}", use: payment)
    }

    struct CreatePayment: Decodable {
        let invoiceID: String
        let paymentMethod: String
        enum CodingKeys: String, CodingKey {
            case invoiceID = "invoice_id"
            case paymentMethod = "payment_method"
        }
    }

    /// The part of Billing's invoice a charge needs.
    struct InvoiceSummary: Decodable {
        let status: String
        let totalCents: Int64
        let currency: String
        enum CodingKeys: String, CodingKey {
            case status, currency
            case totalCents = "total_cents"
        }
    }

    @Sendable func createPayment(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        let tenant = try context.requireTenant()
        guard let key = request.headers[Self.idempotencyHeader], (1...255).contains(key.utf8.count),
              key.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
        else {
            throw APIError(.badRequest, code: "idempotency_key_required", "Send an Idempotency-Key header of 1 to 255 visible ASCII characters.")
        }
        let input = try await request.decodeJSON(as: CreatePayment.self, context: context)
        let invoiceID = try Validate.uuid(input.invoiceID, field: "invoice_id")
        guard CardProcessor.methods[input.paymentMethod] != nil else {
            throw APIError(.unprocessableContent, "Field 'payment_method' must be one of \(CardProcessor.methods.keys.sorted().joined(separator: ", ")).")
        }
        let fingerprint = Secrets.sha256Hex(invoiceID.uuidString.lowercased(), "|", input.paymentMethod)

        // The claim (PostgreSQL) and the invoice (Billing) are independent: ask for both at
        // once. The invoice is only used, and its errors only surface, once the claim is ours.
        async let invoice: Result<InvoiceSummary, any Error> = {
            do { return .success(try await fetchInvoice(invoiceID, tenant: tenant, context: context)) } catch { return .failure(error) }
        }()
        switch try await repository.claim(tenant: tenant, key: key, fingerprint: fingerprint, invoiceID: invoiceID, method: input.paymentMethod) {
        case .claimed(let id):
            let payment = try await process(id: id, tenant: tenant, invoiceID: invoiceID, invoice: await invoice, method: input.paymentMethod, context: context)
            return try JSONResponse.make(payment, status: .created)
        case .replay(let payment):
            return try JSONResponse.make(try await completed(payment, tenant: tenant), status: .created, headers: [.init("Idempotent-Replayed")!: "true"])
        case .keyReused:
            throw APIError(.conflict, code: "idempotency_key_reused", "This Idempotency-Key was used with a different request.")
        case .invoiceBusy:
            throw APIError(.conflict, code: "invoice_not_payable", "The invoice is paid or a payment of it is in progress.")
        }
    }

    /// Charges the invoice for a claimed payment and records the outcome.
    ///
    /// Once the processor has been asked, the claim is never given back here: if this
    /// request fails (or the process dies) before the outcome is stored, the payment stays
    /// `processing` and ``PaymentReconciler`` settles it from the processor's record.
    private func process(
        id: UUID, tenant: String, invoiceID: UUID, invoice fetched: Result<InvoiceSummary, any Error>, method: String, context: CloudBillRequestContext
    ) async throws -> Payment {
        let invoice: InvoiceSummary
        do {
            invoice = try fetched.get()
        } catch {
            try? await repository.release(tenant: tenant, id: id)
            throw error
        }
        metrics.paymentAttempted(tenant: tenant)
        let record: CardProcessor.Record
        do {
            record = try await processor.charge(
                paymentID: id, tenant: tenant, amountCents: invoice.totalCents, currency: invoice.currency, method: method
            )
        } catch {
            context.logger.warning("processor call failed; the reconciler settles the payment", metadata: ["payment": "\(id)", "error": "\(error)", "request_id": "\(context.requestID)"])
            throw APIError(
                .serviceUnavailable, code: "payment_pending",
                "The payment's outcome is not known yet; retry with the same Idempotency-Key.", headers: [.retryAfter: "5"]
            )
        }
        let payment: Payment?
        switch record.outcome {
        case .approved:
            payment = try await repository.complete(
                tenant: tenant, id: id, status: "succeeded", amountCents: invoice.totalCents, currency: invoice.currency, failureReason: nil
            )
            if payment?.status == "succeeded" {
                metrics.paymentSucceeded(tenant: tenant)
                await settlement.settle(paymentID: id, invoiceID: invoiceID, tenant: tenant, requestID: context.requestID)
                if let payment { receipts.enqueue(payment, tenant: tenant, requestID: context.requestID) }
            }
        case .declined(let reason):
            payment = try await repository.complete(
                tenant: tenant, id: id, status: "failed", amountCents: invoice.totalCents, currency: invoice.currency, failureReason: reason
            )
            if payment?.status == "failed" { metrics.paymentFailed(tenant: tenant, reason: reason) }
        case .voided:
            try? await repository.release(tenant: tenant, id: id)
            payment = nil
        }
        guard let payment else {
            throw APIError(
                .conflict, code: "payment_interrupted",
                "The payment was interrupted before the card was charged; nothing was charged. Retry with the same Idempotency-Key."
            )
        }
        return payment
    }

    private func fetchInvoice(_ id: UUID, tenant: String, context: CloudBillRequestContext) async throws -> InvoiceSummary {
        let response = try await client.send(
            .get, configuration.billingURL, "/api/v1/invoices/\(id.uuidString.lowercased())",
            service: "billing-service", tenant: tenant, requestID: context.requestID
        )
        switch response.status {
        case .ok:
            let invoice = try response.decode(InvoiceSummary.self)
            guard invoice.status == "open" else {
                throw APIError(.conflict, code: "invoice_not_open", "The invoice is \(invoice.status), not open.")
            }
            return invoice
        case .notFound:
            throw APIError(.notFound, "No invoice with id '\(id.uuidString.lowercased())'.")
        default:
            throw APIError(.badGateway, "The billing-service answered \(response.status.code) for the invoice.")
        }
    }

    /// Waits for a replayed payment that is still processing to finish.
    private func completed(_ payment: Payment, tenant: String) async throws -> Payment {
        var current = payment
        let deadline = ContinuousClock.now + .seconds(15)
        while current.status == "processing" {
            guard ContinuousClock.now < deadline else {
                throw APIError(.conflict, code: "payment_in_progress", "A payment with this Idempotency-Key is still processing; retry later.")
            }
            try await Task.sleep(for: .milliseconds(50))
            guard let latest = try await repository.payment(tenant: tenant, id: payment.id) else {
                throw APIError(.conflict, code: "payment_in_progress", "The earlier payment with this Idempotency-Key did not start; retry.")
            }
            current = latest
        }
        return current
    }

    @Sendable func payment(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        let tenant = try context.requireTenant()
        let id = try Validate.uuid(try context.parameters.require("id"), field: "payment", inPath: true)
        guard let payment = try await repository.payment(tenant: tenant, id: id) else {
            throw APIError(.notFound, "No payment with id '\(id.uuidString.lowercased())'.")
        }
        return try JSONResponse.make(payment)
    }
}
