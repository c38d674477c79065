import CloudBillKit
import CloudBillStorage
import Foundation

struct Customer: Codable, Sendable {
    let id: UUID
    let name: String
    let email: String
    let createdAt: Date

    enum CodingKeys: String, CodingKey {
        case id, name, email
        case createdAt = "created_at"
    }
}

struct LineItem: Codable, Sendable {
    let description: String
    let quantity: Int
    let unitAmountCents: Int64
    let amountCents: Int64

    enum CodingKeys: String, CodingKey {
        case description, quantity
        case unitAmountCents = "unit_amount_cents"
        case amountCents = "amount_cents"
    }
}

struct Invoice: Codable, Sendable {
    let id: UUID
    let customerID: UUID
    let currency: String
    let status: String
    let subtotalCents: Int64
    let taxCents: Int64
    let totalCents: Int64
    let lineItems: [LineItem]
    let createdAt: Date
    let paidAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, currency, status
        case customerID = "customer_id"
        case subtotalCents = "subtotal_cents"
        case taxCents = "tax_cents"
        case totalCents = "total_cents"
        case lineItems = "line_items"
        case createdAt = "created_at"
        case paidAt = "paid_at"
    }
}

/// What a request to mark an invoice paid found.
enum PaymentMarking {
    case marked(Invoice)
    case notFound
    case notOpen(status: String)
}

/// Customers and invoices in PostgreSQL, every query filtered by tenant; invoice reads
/// cached in Redis and invalidated on every change.
struct BillingRepository: Sendable {
    let database: ConnectionPool
    let cache: Cache
    static let invoiceTTL: Duration = .seconds(60)

    func createCustomer(tenant: String, name: String, email: String) async throws -> Customer {
        let id = UUID()
        let rows = try await database.query(
            "insert_customer", tenant: tenant,
            "INSERT INTO customers (id, tenant_id, name, email) VALUES ($1, $2, $3, $4) RETURNING created_at",
            [id, tenant, name, email]
        )
        return Customer(id: id, name: name, email: email, createdAt: try Self.firstRow(rows).decode(Date.self, at: 0))
    }

    func customer(tenant: String, id: UUID) async throws -> Customer? {
        let rows = try await database.query(
            "select_customer", tenant: tenant,
            "SELECT name, email, created_at FROM customers WHERE id = $1 AND tenant_id = $2", [id, tenant]
        )
        guard let row = rows.first else { return nil }
        return Customer(id: id, name: try row.decode(String.self, at: 0), email: try row.decode(String.self, at: 1), createdAt: try row.decode(Date.self, at: 2))
    }

    /// Stores an invoice and its lines in one statement (atomic on its own: the invoice and
    /// every line, or nothing) and one round trip however many lines it has; nil when the
    /// customer is not the tenant's. The lines travel as one JSON parameter.
    func createInvoice(
        tenant: String, customerID: UUID, currency: String, lines: [LineItem], taxCents: Int64, subtotalCents: Int64
    ) async throws -> Invoice? {
        struct PositionedLine: Encodable {
            let position: Int
            let description: String
            let quantity: Int
            let unitAmountCents: Int64
            let amountCents: Int64
            enum CodingKeys: String, CodingKey {
                case position, description, quantity
                case unitAmountCents = "unit_amount_cents"
                case amountCents = "amount_cents"
            }
        }
        let id = UUID()
        let linesJSON = String(decoding: try JSONEncoder().encode(lines.enumerated().map { position, line in
            PositionedLine(position: position, description: line.description, quantity: line.quantity,
                           unitAmountCents: line.unitAmountCents, amountCents: line.amountCents)
        }), as: UTF8.self)
        let rows = try await database.query(
            "insert_invoice", tenant: tenant,
            """
            WITH invoice AS (
                INSERT INTO invoices (id, tenant_id, customer_id, currency, subtotal_cents, tax_cents, total_cents, status)
                SELECT $1::uuid, $2::text, $3::uuid, $4::text, $5::bigint, $6::bigint, $7::bigint, 'open'
                WHERE EXISTS (SELECT 1 FROM customers WHERE id = $3 AND tenant_id = $2)
                RETURNING id, created_at
            ), lines AS (
                INSERT INTO invoice_line_items (invoice_id, position, description, quantity, unit_amount_cents, amount_cents)
                SELECT invoice.id, line.position, line.description, line.quantity, line.unit_amount_cents, line.amount_cents
                FROM invoice, jsonb_to_recordset($8::jsonb)
                    AS line(position int, description text, quantity int, unit_amount_cents bigint, amount_cents bigint)
            )
            SELECT created_at FROM invoice
            """,
            [id, tenant, customerID, currency, subtotalCents, taxCents, subtotalCents + taxCents, linesJSON]
        )
        guard let row = rows.first else { return nil }
        return Invoice(
            id: id, customerID: customerID, currency: currency, status: "open", subtotalCents: subtotalCents,
            taxCents: taxCents, totalCents: subtotalCents + taxCents, lineItems: lines,
            createdAt: try row.decode(Date.self, at: 0), paidAt: nil
        )
    }

    /// The invoice, from Redis when cached. Cached in the API's own encoding (sorted keys,
    /// ISO 8601 dates), which ``invoiceJSON(tenant:id:)`` serves as it is.
    func invoice(tenant: String, id: UUID) async throws -> Invoice? {
        let key = Self.invoiceKey(tenant: tenant, id: id)
        if let cached = await cache.get(key, tenant: tenant), let invoice = try? JSONDecoder.iso8601.decode(Invoice.self, from: Data(cached)) {
            return invoice
        }
        guard let invoice = try await loadInvoice(tenant: tenant, id: id) else { return nil }
        if let bytes = try? JSONResponse.encoder.encode(invoice) { await cache.set(key, Array(bytes), ttl: Self.invoiceTTL, tenant: tenant) }
        return invoice
    }

    /// The invoice as the API answers it (``JSONResponse``'s encoding), straight from Redis
    /// when cached: a cache hit is neither decoded nor encoded again.
    func invoiceJSON(tenant: String, id: UUID) async throws -> [UInt8]? {
        let key = Self.invoiceKey(tenant: tenant, id: id)
        if let cached = await cache.get(key, tenant: tenant), cached.first == UInt8(ascii: "{"), cached.last == UInt8(ascii: "}") {
            return cached
        }
        guard let invoice = try await loadInvoice(tenant: tenant, id: id) else { return nil }
        let bytes = Array(try JSONResponse.encoder.encode(invoice))
        await cache.set(key, bytes, ttl: Self.invoiceTTL, tenant: tenant)
        return bytes
    }

    func invoices(tenant: String, status: String?, limit: Int) async throws -> [Invoice] {
        let rows = try await database.query(
            "list_invoices", tenant: tenant,
            """
            SELECT id FROM invoices WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
            ORDER BY created_at DESC, id LIMIT $3
            """,
            [tenant, status, limit]
        )
        var invoices: [Invoice] = []
        for row in rows {
            if let invoice = try await invoice(tenant: tenant, id: try row.decode(UUID.self, at: 0)) { invoices.append(invoice) }
        }
        return invoices
    }

    /// Marks an open invoice paid, atomically; the cached copy is removed.
    func markPaid(tenant: String, id: UUID) async throws -> PaymentMarking {
        let updated = try await database.execute(
            "mark_invoice_paid", tenant: tenant,
            "UPDATE invoices SET status = 'paid', paid_at = now() WHERE id = $1 AND tenant_id = $2 AND status = 'open'",
            [id, tenant]
        )
        await cache.delete(Self.invoiceKey(tenant: tenant, id: id), tenant: tenant)
        guard let invoice = try await loadInvoice(tenant: tenant, id: id) else { return .notFound }
        return updated == 1 ? .marked(invoice) : .notOpen(status: invoice.status)
    }

    private func loadInvoice(tenant: String, id: UUID) async throws -> Invoice? {
        let rows = try await database.query(
            "select_invoice", tenant: tenant,
            """
            SELECT customer_id, currency, status, subtotal_cents, tax_cents, total_cents, created_at, paid_at
            FROM invoices WHERE id = $1 AND tenant_id = $2
            """,
            [id, tenant]
        )
        guard let row = rows.first else { return nil }
        let lines = try await database.query(
            "select_line_items", tenant: tenant,
            """
            SELECT description, quantity, unit_amount_cents, amount_cents FROM invoice_line_items
            WHERE invoice_id = $1 ORDER BY position
            """,
            [id]
        ).map { line in
            LineItem(
                description: try line.decode(String.self, at: 0), quantity: try line.decode(Int.self, at: 1),
                unitAmountCents: try line.decode(Int64.self, at: 2), amountCents: try line.decode(Int64.self, at: 3)
            )
        }
        return Invoice(
            id: id, customerID: try row.decode(UUID.self, at: 0), currency: try row.decode(String.self, at: 1),
            status: try row.decode(String.self, at: 2), subtotalCents: try row.decode(Int64.self, at: 3),
            taxCents: try row.decode(Int64.self, at: 4), totalCents: try row.decode(Int64.self, at: 5),
            lineItems: lines, createdAt: try row.decode(Date.self, at: 6), paidAt: try row.decode(Date?.self, at: 7)
        )
    }

    static func invoiceKey(tenant: String, id: UUID) -> String { "billing:invoice:\(tenant):\(id.uuidString.lowercased())" }

    /// The one row an `INSERT ... RETURNING` answers.
    static func firstRow(_ rows: [PostgresRow]) throws -> PostgresRow {
        guard let row = rows.first else { throw DatabaseError.queryFailed(sqlState: "P0002") }
        return row
    }
}
