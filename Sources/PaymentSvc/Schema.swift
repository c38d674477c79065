import CloudBillStorage

/// Payment's tables: versions 300 to 399 of the shared migration sequence.
enum PaymentSchema {
    static let migrations = [
        Migration(version: 300, name: "payment_payments", sql: """
            CREATE TABLE payments (
                id                  uuid PRIMARY KEY,
                tenant_id           text NOT NULL,
                idempotency_key     text NOT NULL,
                request_fingerprint text NOT NULL,
                invoice_id          uuid NOT NULL,
                payment_method      text NOT NULL,
                amount_cents        bigint,
                currency            text,
                status              text NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
                failure_reason      text,
                created_at          timestamptz NOT NULL DEFAULT now(),
                completed_at        timestamptz,
                UNIQUE (tenant_id, idempotency_key)
            );
            -- At most one payment of an invoice is in flight or has succeeded: an invoice is
            -- never charged twice, whatever idempotency keys the callers use.
            CREATE UNIQUE INDEX payments_one_live_per_invoice ON payments (invoice_id)
                WHERE status IN ('processing', 'succeeded');
            """),
        Migration(version: 301, name: "payment_reconciliation", sql: """
            -- One live payment per invoice *of a tenant*: another tenant's invoice id is none of
            -- this tenant's business, so it answers 404 (from Billing), never 409.
            DROP INDEX payments_one_live_per_invoice;
            CREATE UNIQUE INDEX payments_one_live_per_invoice ON payments (tenant_id, invoice_id)
                WHERE status IN ('processing', 'succeeded');
            CREATE INDEX payments_processing ON payments (created_at) WHERE status = 'processing';
            -- The simulated card processor's own records, as an external processor keeps them:
            -- one per payment id, its idempotency key. 'voided' is written by the reconciler for
            -- a payment the processor never charged, so a late charge of it is refused.
            CREATE TABLE processor_charges (
                payment_id     uuid PRIMARY KEY,
                outcome        text NOT NULL CHECK (outcome IN ('approved', 'declined', 'voided')),
                decline_reason text,
                amount_cents   bigint,
                currency       text,
                created_at     timestamptz NOT NULL DEFAULT now()
            );
            -- Invoices still to be marked paid for a succeeded payment: written in the same
            -- transaction as the success, deleted once Billing has the invoice paid.
            CREATE TABLE payment_outbox (
                payment_id      uuid PRIMARY KEY REFERENCES payments (id),
                tenant_id       text NOT NULL,
                invoice_id      uuid NOT NULL,
                attempts        int NOT NULL DEFAULT 0,
                next_attempt_at timestamptz NOT NULL DEFAULT now(),
                last_error      text,
                created_at      timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX payment_outbox_due ON payment_outbox (next_attempt_at);
            """),
    ]
}
