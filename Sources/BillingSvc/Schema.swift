import CloudBillStorage

/// Billing's tables: versions 200 to 299 of the shared migration sequence.
enum BillingSchema {
    static let migrations = [
        Migration(version: 200, name: "billing_customers_invoices", sql: """
            CREATE TABLE customers (
                id         uuid PRIMARY KEY,
                tenant_id  text NOT NULL,
                name       text NOT NULL,
                email      text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX customers_tenant ON customers (tenant_id, created_at);
            CREATE TABLE invoices (
                id             uuid PRIMARY KEY,
                tenant_id      text NOT NULL,
                customer_id    uuid NOT NULL REFERENCES customers (id),
                currency       text NOT NULL,
                subtotal_cents bigint NOT NULL CHECK (subtotal_cents >= 0),
                tax_cents      bigint NOT NULL CHECK (tax_cents >= 0),
                total_cents    bigint NOT NULL CHECK (total_cents = subtotal_cents + tax_cents),
                status         text NOT NULL CHECK (status IN ('open', 'paid', 'void')),
                created_at     timestamptz NOT NULL DEFAULT now(),
                paid_at        timestamptz
            );
            CREATE INDEX invoices_tenant_status ON invoices (tenant_id, status, created_at DESC);
            CREATE TABLE invoice_line_items (
                invoice_id        uuid NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
                position          int NOT NULL,
                description       text NOT NULL,
                quantity          int NOT NULL CHECK (quantity > 0),
                unit_amount_cents bigint NOT NULL CHECK (unit_amount_cents >= 0),
                amount_cents      bigint NOT NULL,
                PRIMARY KEY (invoice_id, position)
            );
            """),
    ]
}
