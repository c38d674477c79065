import CloudBillInstrumentation
import CloudBillKit
import CloudBillStorage
import Foundation
import Hummingbird

/// Billing's routes: customers and invoices of the tenant the gateway vouched for.
struct BillingController {
    let repository: BillingRepository
    let metrics: BusinessMetrics
    let faults: FaultInjector
    let internalTokens: [String]

    static let currencies: Set<String> = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "NOK", "DKK"]
    static let statuses: Set<String> = ["open", "paid", "void"]
    /// The largest invoice total accepted: 100 million in major units.
    static let maximumTotalCents: Int64 = 10_000_000_000

    func addRoutes(to router: Router<CloudBillRequestContext>) {
        router.post("/api/v1/customers", use: createCustomer)
        router.get("/api/v1/customers/{id}", use: customer)
        router.post("/api/v1/invoices", use: createInvoice)
        router.get("/api/v1/invoices/{id}", use: invoice)
        router.get("/api/v1/invoices", use: listInvoices)
        router.post("/internal/invoices/{id}/mark-paid", use: markPaid)
    }

    struct CreateCustomer: Decodable {
        let name: String
        let email: String
    }

    @Sendable func createCustomer(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        let tenant = try context.requireTenant()
        let input = try await request.decodeJSON(as: CreateCustomer.self, context: context)
        let name = try Validate.text(input.name, field: "name", maxLength: 200)
        let email = try Validate.email(input.email, field: "email")
        return try JSONResponse.make(try await repository.createCustomer(tenant: tenant, name: name, email: email), status: .created)
    }

    @Sendable func customer(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        let tenant = try context.requireTenant()
        let id = try Validate.uuid(try context.parameters.require("id"), field: "customer", inPath: true)
        guard let customer = try await repository.customer(tenant: tenant, id: id) else {
            throw APIError(.notFound, "No customer with id '\(id.uuidString.lowercased())'.")
        }
        return try JSONResponse.make(customer)
    }

    struct CreateInvoice: Decodable {
        struct Line: Decodable {
            let description: String
            let quantity: Int
            let unitAmountCents: Int64
            enum CodingKeys: String, CodingKey {
                case description, quantity
                case unitAmountCents = "unit_amount_cents"
            }
        }
        let customerID: String
        let currency: String
        let lineItems: [Line]
        let taxRateBasisPoints: Int?
        enum CodingKeys: String, CodingKey {
            case currency
            case customerID = "customer_id"
            case lineItems = "line_items"
            case taxRateBasisPoints = "tax_rate_bps"
        }
    }

    @Sendable func createInvoice(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        let tenant = try context.requireTenant()
        let input = try await request.decodeJSON(as: CreateInvoice.self, context: context)
        let customerID = try Validate.uuid(input.customerID, field: "customer_id")
        guard Self.currencies.contains(input.currency) else {
            throw APIError(.unprocessableContent, "Field 'currency' must be one of \(Self.currencies.sorted().joined(separator: ", ")).")
        }
        guard (1...100).contains(input.lineItems.count) else {
            throw APIError(.unprocessableContent, "Field 'line_items' must hold 1 to 100 items.")
        }
        let taxRate = input.taxRateBasisPoints ?? 0
        guard (0...5000).contains(taxRate) else {
            throw APIError(.unprocessableContent, "Field 'tax_rate_bps' must be between 0 and 5000 basis points.")
        }
        var lines: [LineItem] = []
        var subtotal: Int64 = 0
        for (index, line) in input.lineItems.enumerated() {
            let field = "line_items[\(index)]"
            let description = try Validate.text(line.description, field: "\(field).description", maxLength: 500)
            guard (1...1_000_000).contains(line.quantity) else {
                throw APIError(.unprocessableContent, "Field '\(field).quantity' must be between 1 and 1000000.")
            }
            guard (0...Self.maximumTotalCents).contains(line.unitAmountCents) else {
                throw APIError(.unprocessableContent, "Field '\(field).unit_amount_cents' must be between 0 and \(Self.maximumTotalCents).")
            }
            let (amount, overflow) = line.unitAmountCents.multipliedReportingOverflow(by: Int64(line.quantity))
            guard !overflow, amount <= Self.maximumTotalCents else {
                throw APIError(.unprocessableContent, "Field '\(field)' comes to more than \(Self.maximumTotalCents) cents.")
            }
            subtotal += amount
            guard subtotal <= Self.maximumTotalCents else {
                throw APIError(.unprocessableContent, "The invoice comes to more than \(Self.maximumTotalCents) cents.")
            }
            lines.append(LineItem(description: description, quantity: line.quantity, unitAmountCents: line.unitAmountCents, amountCents: amount))
        }
        // Tax rounds half up, in integer cents.
        let tax = (subtotal * Int64(taxRate) + 5000) / 10000
        if faults.shouldInject(.invoiceFailures) {
            // Injected fault: generation fails before anything is stored, as a failing step would.
            metrics.invoiceFailed(tenant: tenant, reason: "generation_error")
            throw APIError(.internalServerError, code: "invoice_generation_failed", "The invoice could not be generated; retry later.")
        }
        let invoice: Invoice?
        do {
            invoice = try await repository.createInvoice(
                tenant: tenant, customerID: customerID, currency: input.currency, lines: lines, taxCents: tax, subtotalCents: subtotal
            )
        } catch let error as DatabaseError {
            metrics.invoiceFailed(tenant: tenant, reason: "storage_\(error.errorType.rawValue)")
            throw error
        }
        guard let invoice else {
            throw APIError(.notFound, "No customer with id '\(customerID.uuidString.lowercased())'.")
        }
        metrics.invoiceGenerated(tenant: tenant)
        return try JSONResponse.make(invoice, status: .created)
    }

    @Sendable func invoice(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        let tenant = try context.requireTenant()
        let id = try Validate.uuid(try context.parameters.require("id"), field: "invoice", inPath: true)
        guard let json = try await repository.invoiceJSON(tenant: tenant, id: id) else {
            throw APIError(.notFound, "No invoice with id '\(id.uuidString.lowercased())'.")
        }
        return JSONResponse.make(bytes: json)
    }

    @Sendable func listInvoices(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        let tenant = try context.requireTenant()
        let query = request.uri.queryParameters
        let status = query["status"].map(String.init)
        if let status, !Self.statuses.contains(status) {
            throw APIError(.unprocessableContent, "Query 'status' must be open, paid or void.")
        }
        var limit = 20
        if let text = query["limit"] {
            guard let value = Int(text), (1...100).contains(value) else {
                throw APIError(.unprocessableContent, "Query 'limit' must be a whole number from 1 to 100.")
            }
            limit = value
        }
        // `{"count":…,"data":[…]}`: the keys in JSONResponse's sorted order, each invoice as
        // the cache holds it, so a listing of cached invoices decodes and encodes nothing.
        let invoices = try await repository.invoicesJSON(tenant: tenant, status: status, limit: limit)
        var body = Array("{\"count\":\(invoices.count),\"data\":[".utf8)
        for (index, invoice) in invoices.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.append(contentsOf: invoice)
        }
        body.append(contentsOf: "]}".utf8)
        return JSONResponse.make(bytes: body)
    }

    @Sendable func markPaid(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        try context.requireInternalCaller(request, accepting: internalTokens)
        let tenant = try context.requireTenant()
        let id = try Validate.uuid(try context.parameters.require("id"), field: "invoice", inPath: true)
        switch try await repository.markPaid(tenant: tenant, id: id) {
        case .marked(let invoice):
            return try JSONResponse.make(invoice)
        case .notFound:
            throw APIError(.notFound, "No invoice with id '\(id.uuidString.lowercased())'.")
        case .notOpen(let status):
            throw APIError(.conflict, code: "invoice_not_open", "The invoice is \(status), not open.")
        }
    }
}
