import CloudBillStorage

/// Notification's tables: versions 400 to 499 of the shared migration sequence.
enum NotificationSchema {
    static let migrations = [
        Migration(version: 400, name: "notification_notifications", sql: """
            CREATE TABLE notifications (
                id           uuid PRIMARY KEY,
                tenant_id    text NOT NULL,
                type         text NOT NULL CHECK (type IN ('email', 'sms', 'webhook')),
                recipient    text NOT NULL,
                subject      text,
                body         text NOT NULL,
                status       text NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
                attempts     int NOT NULL DEFAULT 0,
                last_error   text,
                created_at   timestamptz NOT NULL DEFAULT now(),
                delivered_at timestamptz
            );
            CREATE INDEX notifications_queued ON notifications (created_at) WHERE status = 'queued';
            """),
        Migration(version: 401, name: "notification_delivery_lease", sql: """
            -- A delivery claims a notification for a while: another instance skips it until
            -- the lease runs out (a crashed deliverer's work is picked up again then).
            ALTER TABLE notifications ADD COLUMN lease_until timestamptz;
            """),
    ]
}
