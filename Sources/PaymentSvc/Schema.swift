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
    ]
}
