/// The kind of a Prometheus metric family.
public enum MetricType: String, Sendable, CaseIterable {
    case counter
    case gauge
    case histogram
}

/// One metric family: its name, type, help text, label names in their fixed order and,
/// for histograms, the bucket upper bounds.
public struct MetricDefinition: Sendable, Hashable {
    public let name: String
    public let type: MetricType
    public let help: String
    public let labelNames: [String]
    public let buckets: [Double]

    init(_ name: String, _ type: MetricType, _ help: String, labels: [String], buckets: [Double] = []) {
        precondition(type == .histogram || buckets.isEmpty, "\(name): only histograms have buckets")
        precondition(type != .histogram || !buckets.isEmpty, "\(name): a histogram needs buckets")
        self.name = name
        self.type = type
        self.help = help
        self.labelNames = labels
        self.buckets = buckets
    }

    /// Whether the family carries a `tenant_id` label, and so goes through the tenant guard.
    public var isTenantAttributed: Bool { labelNames.contains(MetricCatalog.tenantLabel) }
}

/// Every metric a CloudBill service exposes, defined once.
///
/// Names, label names and buckets follow the CloudBill monitoring document; dashboards and
/// alert rules depend on them exactly as written here.
public enum MetricCatalog {
    public static let serviceLabel = "service"
    public static let tenantLabel = "tenant_id"

    /// Request-latency buckets of the monitoring document, in seconds.
    public static let httpDurationBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// Body-size buckets in bytes: 64 B to 4 MiB in powers of four.
    public static let sizeBuckets: [Double] = [64, 256, 1024, 4096, 16384, 65536, 262_144, 1_048_576, 4_194_304]
    /// Query-latency buckets in seconds; 1 s is a boundary so the slow-query alert is exact.
    public static let queryDurationBuckets: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// Cache-latency buckets in seconds, from 0.5 ms.
    public static let cacheDurationBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]
    /// prom-client's buckets for `nodejs_gc_duration_seconds`.
    public static let gcDurationBuckets: [Double] = [0.001, 0.01, 0.1, 1, 2, 5]

    // MARK: HTTP

    public static let httpRequestsTotal = MetricDefinition(
        "http_requests_total", .counter,
        "Total HTTP requests handled, by route template and response status.",
        labels: ["service", "method", "route", "status", "tenant_id"]
    )
    public static let httpRequestDuration = MetricDefinition(
        "http_request_duration_seconds", .histogram,
        "Time from receiving a request to writing the last byte of its response.",
        labels: ["service", "method", "route", "tenant_id"], buckets: httpDurationBuckets
    )
    public static let httpRequestSize = MetricDefinition(
        "http_request_size_bytes", .histogram,
        "Size of request bodies in bytes.",
        labels: ["service", "method", "route"], buckets: sizeBuckets
    )
    public static let httpResponseSize = MetricDefinition(
        "http_response_size_bytes", .histogram,
        "Size of response bodies in bytes.",
        labels: ["service", "method", "route"], buckets: sizeBuckets
    )

    // MARK: Database

    public static let dbPoolTotalConnections = MetricDefinition(
        "db_pool_total_connections", .gauge,
        "Open PostgreSQL connections in the pool, busy or idle.", labels: ["service"]
    )
    public static let dbPoolActiveConnections = MetricDefinition(
        "db_pool_active_connections", .gauge,
        "PostgreSQL connections currently lent out to a caller.", labels: ["service"]
    )
    public static let dbPoolIdleConnections = MetricDefinition(
        "db_pool_idle_connections", .gauge,
        "Open PostgreSQL connections waiting in the pool for a caller.", labels: ["service"]
    )
    public static let dbPoolWaitingRequests = MetricDefinition(
        "db_pool_waiting_requests", .gauge,
        "Callers queued for a PostgreSQL connection because the pool is fully lent out.", labels: ["service"]
    )
    public static let dbQueryDuration = MetricDefinition(
        "db_query_duration_seconds", .histogram,
        "PostgreSQL query execution time, by bounded operation name.",
        labels: ["service", "operation", "tenant_id"], buckets: queryDurationBuckets
    )
    public static let dbErrorsTotal = MetricDefinition(
        "db_errors_total", .counter,
        "PostgreSQL failures by class: connection, timeout, pool_exhausted, constraint, query.",
        labels: ["service", "error_type", "tenant_id"]
    )

    // MARK: Redis

    public static let redisOperationsTotal = MetricDefinition(
        "redis_operations_total", .counter,
        "Cache operations: hit and miss for reads, set for writes, delete for removals.",
        labels: ["service", "operation", "tenant_id"]
    )
    public static let redisOperationDuration = MetricDefinition(
        "redis_operation_duration_seconds", .histogram,
        "Redis round-trip time per operation.",
        labels: ["service", "operation"], buckets: cacheDurationBuckets
    )
    public static let redisErrorsTotal = MetricDefinition(
        "redis_errors_total", .counter,
        "Redis failures by class: connection, timeout, protocol, command.",
        labels: ["service", "error_type"]
    )

    // MARK: Business

    public static let paymentsTotal = MetricDefinition(
        "cloudbill_payments_total", .counter,
        "Payment attempts sent to the card processor.", labels: ["service", "tenant_id"]
    )
    public static let paymentsSucceededTotal = MetricDefinition(
        "cloudbill_payments_succeeded_total", .counter,
        "Payments the card processor accepted.", labels: ["service", "tenant_id"]
    )
    public static let paymentsFailedTotal = MetricDefinition(
        "cloudbill_payments_failed_total", .counter,
        "Payments that failed, by reason.", labels: ["service", "tenant_id", "reason"]
    )
    public static let invoicesGeneratedTotal = MetricDefinition(
        "cloudbill_invoices_generated_total", .counter,
        "Invoices generated and stored.", labels: ["service", "tenant_id"]
    )
    public static let invoicesFailedTotal = MetricDefinition(
        "cloudbill_invoices_failed_total", .counter,
        "Invoice generations that failed after validation, by reason.", labels: ["service", "tenant_id", "reason"]
    )
    public static let notificationsSentTotal = MetricDefinition(
        "cloudbill_notifications_sent_total", .counter,
        "Notifications delivered, by channel.", labels: ["service", "notification_type", "tenant_id"]
    )
    public static let notificationsFailedTotal = MetricDefinition(
        "cloudbill_notifications_failed_total", .counter,
        "Notifications whose delivery failed for good, by channel.",
        labels: ["service", "notification_type", "tenant_id"]
    )

    // MARK: Runtime

    public static let processCPUSecondsTotal = MetricDefinition(
        "process_cpu_seconds_total", .counter, "Total user and system CPU time spent in seconds.", labels: ["service"]
    )
    public static let processCPUUserSecondsTotal = MetricDefinition(
        "process_cpu_user_seconds_total", .counter, "Total user CPU time spent in seconds.", labels: ["service"]
    )
    public static let processCPUSystemSecondsTotal = MetricDefinition(
        "process_cpu_system_seconds_total", .counter, "Total system CPU time spent in seconds.", labels: ["service"]
    )
    public static let processStartTimeSeconds = MetricDefinition(
        "process_start_time_seconds", .gauge, "Start time of the process since unix epoch in seconds.",
        labels: ["service"]
    )
    public static let processResidentMemoryBytes = MetricDefinition(
        "process_resident_memory_bytes", .gauge, "Resident memory size in bytes.", labels: ["service"]
    )
    public static let processVirtualMemoryBytes = MetricDefinition(
        "process_virtual_memory_bytes", .gauge, "Virtual memory size in bytes.", labels: ["service"]
    )
    public static let processHeapBytes = MetricDefinition(
        "process_heap_bytes", .gauge, "Heap size in bytes obtained by the allocator (glibc mallinfo2 arena + hblkhd).",
        labels: ["service"]
    )
    public static let processOpenFDs = MetricDefinition(
        "process_open_fds", .gauge, "Number of open file descriptors.", labels: ["service"]
    )
    public static let processMaxFDs = MetricDefinition(
        "process_max_fds", .gauge, "Maximum number of open file descriptors.", labels: ["service"]
    )
    public static let eventLoopLag = MetricDefinition(
        "nodejs_eventloop_lag_seconds", .gauge,
        "Largest delay, in the last sample, between scheduling a task on a SwiftNIO event loop and its start.",
        labels: ["service"]
    )
    public static let gcDuration = MetricDefinition(
        "nodejs_gc_duration_seconds", .histogram,
        "Garbage collection pauses. Swift frees memory by reference counting (ARC) and never pauses to collect, so this histogram stays empty; it is kept for dashboards built for Node services.",
        labels: ["service"], buckets: gcDurationBuckets
    )

    // MARK: CloudBill's own

    public static let tenantsFoldedTotal = MetricDefinition(
        "cloudbill_metric_tenants_folded_total", .counter,
        "Observations recorded with tenant_id=\"__other__\" because their family reached its tenant limit.",
        labels: ["service", "family"]
    )
    public static let faultActive = MetricDefinition(
        "cloudbill_fault_active", .gauge, "1 while an injected fault of this kind is active, else 0.",
        labels: ["service", "fault"]
    )

    /// The families the monitoring document names, in its order.
    public static let documented: [MetricDefinition] = [
        httpRequestsTotal, httpRequestDuration, httpRequestSize, httpResponseSize,
        dbPoolTotalConnections, dbPoolActiveConnections, dbPoolIdleConnections, dbPoolWaitingRequests,
        dbQueryDuration, dbErrorsTotal,
        redisOperationsTotal, redisOperationDuration, redisErrorsTotal,
        paymentsTotal, paymentsSucceededTotal, paymentsFailedTotal,
        invoicesGeneratedTotal, invoicesFailedTotal, notificationsSentTotal, notificationsFailedTotal,
        processCPUSecondsTotal, processResidentMemoryBytes, processHeapBytes, eventLoopLag, gcDuration,
    ]

    /// The rest of the standard process set.
    public static let processExtras: [MetricDefinition] = [
        processCPUUserSecondsTotal, processCPUSystemSecondsTotal, processStartTimeSeconds,
        processVirtualMemoryBytes, processOpenFDs, processMaxFDs,
    ]

    /// Every family a service may expose.
    public static let all: [MetricDefinition] = documented + processExtras + [tenantsFoldedTotal, faultActive]

    /// Families every running service exposes from its first scrape on.
    public static let runtime: [MetricDefinition] = [
        processCPUSecondsTotal, processCPUUserSecondsTotal, processCPUSystemSecondsTotal, processStartTimeSeconds,
        processResidentMemoryBytes, processVirtualMemoryBytes, processHeapBytes, processOpenFDs, processMaxFDs,
        eventLoopLag, gcDuration,
    ]
}
