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
        let id = UUID()
        let linesJSON = String(decoding: try JSONEncoder().encode(lines), as: UTF8.self)
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
                SELECT invoice.id, line.ordinality - 1, line.description, line.quantity, line.unit_amount_cents, line.amount_cents
                FROM invoice, ROWS FROM (jsonb_to_recordset($8::jsonb)
                    AS (description text, quantity int, unit_amount_cents bigint, amount_cents bigint)) WITH ORDINALITY AS line
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

    /// The tenant's newest invoices (of one status, if given), each as ``invoiceJSON(tenant:id:)``
    /// answers it, in three round trips whatever the count: their ids, one `MGET`, and one
    /// query for those the cache did not hold (which are then cached in one pipeline).
    func invoicesJSON(tenant: String, status: String?, limit: Int) async throws -> [[UInt8]] {
        let ids = try await database.query(
            "list_invoices", tenant: tenant,
            """
            SELECT id FROM invoices WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
            ORDER BY created_at DESC, id LIMIT $3
            """,
            [tenant, status, limit]
        ).map { try $0.decode(UUID.self, at: 0) }
        var found = await cache.get(ids.map { Self.invoiceKey(tenant: tenant, id: $0) }, tenant: tenant).map { cached in
            cached.flatMap { $0.first == UInt8(ascii: "{") && $0.last == UInt8(ascii: "}") ? $0 : nil }
        }
        let missing = ids.indices.filter { found[$0] == nil }
        if !missing.isEmpty {
            let loaded = try await loadInvoices(tenant: tenant, ids: missing.map { ids[$0] })
            var entries: [(key: String, value: [UInt8])] = []
            for index in missing {
                // An invoice gone since the first query (none are deleted today) is left out.
                guard let invoice = loaded[ids[index]] else { continue }
                let bytes = Array(try JSONResponse.encoder.encode(invoice))
                found[index] = bytes
                entries.append((Self.invoiceKey(tenant: tenant, id: invoice.id), bytes))
            }
            await cache.set(entries, ttl: Self.invoiceTTL, tenant: tenant)
        }
        return found.compactMap { $0 }
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
        try await loadInvoices(tenant: tenant, ids: [id])[id]
    }

    /// The tenant's invoices among `ids`, each with its lines, in one query.
    private func loadInvoices(tenant: String, ids: [UUID]) async throws -> [UUID: Invoice] {
        let rows = try await database.query(
            "select_invoices", tenant: tenant,
            """
            SELECT i.id, i.customer_id, i.currency, i.status, i.subtotal_cents, i.tax_cents, i.total_cents, i.created_at, i.paid_at,
                   COALESCE((
                       SELECT jsonb_agg(jsonb_build_object(
                                  'description', l.description, 'quantity', l.quantity,
                                  'unit_amount_cents', l.unit_amount_cents, 'amount_cents', l.amount_cents
                              ) ORDER BY l.position)
                       FROM invoice_line_items l WHERE l.invoice_id = i.id
                   ), '[]'::jsonb)
            FROM invoices i WHERE i.tenant_id = $1 AND i.id = ANY($2::uuid[])
            """,
            [tenant, "{" + ids.map { $0.uuidString.lowercased() }.joined(separator: ",") + "}"]
        )
        var invoices: [UUID: Invoice] = [:]
        let decoder = JSONDecoder()
        for row in rows {
            let id = try row.decode(UUID.self, at: 0)
            invoices[id] = Invoice(
                id: id, customerID: try row.decode(UUID.self, at: 1), currency: try row.decode(String.self, at: 2),
                status: try row.decode(String.self, at: 3), subtotalCents: try row.decode(Int64.self, at: 4),
                taxCents: try row.decode(Int64.self, at: 5), totalCents: try row.decode(Int64.self, at: 6),
                lineItems: try decoder.decode([LineItem].self, from: Data(try row.decode(String.self, at: 9).utf8)),
                createdAt: try row.decode(Date.self, at: 7), paidAt: try row.decode(Date?.self, at: 8)
            )
        }
        return invoices
    }

    static func invoiceKey(tenant: String, id: UUID) -> String { "billing:invoice:\(tenant):\(id.uuidString.lowercased())" }

    /// The one row an `INSERT ... RETURNING` answers.
    static func firstRow(_ rows: [PostgresRow]) throws -> PostgresRow {
        guard let row = rows.first else { throw DatabaseError.queryFailed(sqlState: "P0002") }
        return row
    }
}
