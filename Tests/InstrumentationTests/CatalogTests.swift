import CloudBillInstrumentation
import CloudBillTestSupport
import Testing

/// The families of the monitoring document, transcribed from it: what the catalogue must equal.
private let documentedFamilies: [(name: String, type: MetricType, labels: [String], buckets: [Double])] = [
    ("http_requests_total", .counter, ["service", "method", "route", "status", "tenant_id"], []),
    ("http_request_duration_seconds", .histogram, ["service", "method", "route", "tenant_id"],
     [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
    ("http_request_size_bytes", .histogram, ["service", "method", "route"], MetricCatalog.sizeBuckets),
    ("http_response_size_bytes", .histogram, ["service", "method", "route"], MetricCatalog.sizeBuckets),
    ("db_pool_total_connections", .gauge, ["service"], []),
    ("db_pool_active_connections", .gauge, ["service"], []),
    ("db_pool_idle_connections", .gauge, ["service"], []),
    ("db_pool_waiting_requests", .gauge, ["service"], []),
    ("db_query_duration_seconds", .histogram, ["service", "operation", "tenant_id"], MetricCatalog.queryDurationBuckets),
    ("db_errors_total", .counter, ["service", "error_type", "tenant_id"], []),
    ("redis_operations_total", .counter, ["service", "operation", "tenant_id"], []),
    ("redis_operation_duration_seconds", .histogram, ["service", "operation"], MetricCatalog.cacheDurationBuckets),
    ("redis_errors_total", .counter, ["service", "error_type"], []),
    ("cloudbill_payments_total", .counter, ["service", "tenant_id"], []),
    ("cloudbill_payments_succeeded_total", .counter, ["service", "tenant_id"], []),
    ("cloudbill_payments_failed_total", .counter, ["service", "tenant_id", "reason"], []),
    ("cloudbill_invoices_generated_total", .counter, ["service", "tenant_id"], []),
    ("cloudbill_invoices_failed_total", .counter, ["service", "tenant_id", "reason"], []),
    ("cloudbill_notifications_sent_total", .counter, ["service", "notification_type", "tenant_id"], []),
    ("cloudbill_notifications_failed_total", .counter, ["service", "notification_type", "tenant_id"], []),
    ("process_cpu_seconds_total", .counter, ["service"], []),
    ("process_resident_memory_bytes", .gauge, ["service"], []),
    ("process_heap_bytes", .gauge, ["service"], []),
    ("nodejs_eventloop_lag_seconds", .gauge, ["service"], []),
    ("nodejs_gc_duration_seconds", .histogram, ["service"], [0.001, 0.01, 0.1, 1, 2, 5]),
]

private let standardProcessFamilies: [(name: String, type: MetricType)] = [
    ("process_cpu_user_seconds_total", .counter), ("process_cpu_system_seconds_total", .counter),
    ("process_start_time_seconds", .gauge), ("process_virtual_memory_bytes", .gauge),
    ("process_open_fds", .gauge), ("process_max_fds", .gauge),
]

/// Records one observation in every family, so that each shows in the exposition.
private func exerciseEveryFamily(_ metrics: ServiceMetrics) {
    metrics.http.record(method: "GET", route: "/x/{id}", status: 200, tenant: "t1", seconds: 0.02, requestBytes: 10, responseBytes: 300)
    metrics.database.recordQuery(operation: "select", tenant: "t1", seconds: 0.003)
    metrics.database.countError(.connection, tenant: "t1")
    metrics.database.pool?.set(capacity: 4, active: 1, idle: 2, waiting: 0)
    metrics.cache.record(.hit, tenant: "t1", seconds: 0.0004)
    metrics.cache.countError(.connection)
    metrics.business.paymentAttempted(tenant: "t1")
    metrics.business.paymentSucceeded(tenant: "t1")
    metrics.business.paymentFailed(tenant: "t1", reason: "card_declined")
    metrics.business.invoiceGenerated(tenant: "t1")
    metrics.business.invoiceFailed(tenant: "t1", reason: "storage")
    metrics.business.notificationSent(.email, tenant: "t1")
    metrics.business.notificationFailed(.webhook, tenant: "t1")
    metrics.setFault("latency", active: true)
}

@Suite struct CatalogTests {
    @Test func documentedFamiliesEqualTheMonitoringDocument() {
        #expect(MetricCatalog.documented.map(\.name) == documentedFamilies.map(\.name))
        for (definition, expected) in zip(MetricCatalog.documented, documentedFamilies) {
            #expect(definition.type == expected.type, "\(expected.name) type")
            #expect(definition.labelNames == expected.labels, "\(expected.name) labels")
            #expect(definition.buckets == expected.buckets, "\(expected.name) buckets")
        }
        #expect(MetricCatalog.processExtras.map(\.name) == standardProcessFamilies.map(\.name))
        #expect(MetricCatalog.processExtras.map(\.type) == standardProcessFamilies.map(\.type))
    }

    @Test func everyFamilyHasHelpAndUniqueName() {
        let names = MetricCatalog.all.map(\.name)
        #expect(Set(names).count == names.count)
        for definition in MetricCatalog.all {
            #expect(!definition.help.isEmpty, "\(definition.name) has no help")
            #expect(definition.labelNames.first == "service", "\(definition.name) starts with service")
            #expect((definition.type == .counter) == definition.name.hasSuffix("_total"), "\(definition.name) suffix")
        }
    }

    @Test func exposedFamiliesMatchTheCatalogue() throws {
        let metrics = ServiceMetrics(service: "catalog-test")
        exerciseEveryFamily(metrics)
        let scrape = Exposition(String(decoding: metrics.exposition(), as: UTF8.self))
        for definition in MetricCatalog.all {
            #expect(scrape.types[definition.name] == definition.type.rawValue, "\(definition.name) TYPE")
            #expect(scrape.help[definition.name] == definition.help, "\(definition.name) HELP")
            let samples = scrape.samples(of: definition.name)
            #expect(!samples.isEmpty, "\(definition.name) has samples")
            for sample in samples {
                let expected = sample.name.hasSuffix("_bucket") ? definition.labelNames + ["le"] : definition.labelNames
                #expect(sample.labelNames == expected, "\(sample.name) label names in order")
                #expect(sample["service"] == "catalog-test")
            }
            if definition.type == .histogram {
                let bounds = samples.filter { $0.name.hasSuffix("_bucket") }.compactMap { $0["le"] }
                let firstSeries = Array(bounds.prefix(definition.buckets.count + 1))
                #expect(firstSeries.dropLast().compactMap(Double.init) == definition.buckets, "\(definition.name) buckets")
                #expect(firstSeries.last == "+Inf")
            }
        }
    }

    @Test func expositionPassesPromtool() throws {
        let metrics = ServiceMetrics(service: "catalog-test")
        exerciseEveryFamily(metrics)
        let result = try Promtool.checkMetrics(String(decoding: metrics.exposition(), as: UTF8.self))
        #expect(result.exitCode == 0)
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "promtool findings: \(result.output)")
    }

    @Test func poolGaugesAreScrapedAsOneState() async {
        // A pool lending and taking back one of its two connections as fast as it can,
        // scraped meanwhile: every scrape shows a state the pool was in, never `active` of
        // one state with `idle` of another.
        let metrics = ServiceMetrics(service: "pool-test")
        let pool = metrics.database.pool!
        let publisher = Task.detached {
            var lent = false
            while !Task.isCancelled {
                lent.toggle()
                pool.set(capacity: 2, active: lent ? 2 : 1, idle: lent ? 0 : 1, waiting: lent ? 3 : 0)
            }
        }
        var torn: [(Double, Double, Double)] = []
        for _ in 0..<300 {
            let scrape = Exposition(String(decoding: metrics.exposition(), as: UTF8.self))
            let labels = ["service": "pool-test"]
            let state = (scrape.value("db_pool_active_connections", labels) ?? -1,
                         scrape.value("db_pool_idle_connections", labels) ?? -1,
                         scrape.value("db_pool_waiting_requests", labels) ?? -1)
            let consistent = (state == (2, 0, 3) || state == (1, 1, 0) || state == (0, 0, 0))
                && scrape.value("db_pool_total_connections", labels) != nil
            if !consistent { torn.append(state) }
        }
        publisher.cancel()
        #expect(torn.isEmpty, "scrapes mixing two pool states: \(torn.prefix(5))")
    }

    @Test func serviceWithoutPoolExposesNoPoolGauges() {
        let metrics = ServiceMetrics(service: "gateway-test", databasePool: false)
        let scrape = Exposition(String(decoding: metrics.exposition(), as: UTF8.self))
        #expect(metrics.database.pool == nil)
        #expect(scrape.types["db_pool_total_connections"] == nil)
    }
}

@Suite struct TenantGuardTests {
    @Test func tenantsPastTheLimitAreFoldedAndCounted() {
        let metrics = ServiceMetrics(service: "guard-test", tenantLimit: 2)
        for tenant in ["t1", "t2", "t3", "t4", "t3", "t1"] {
            metrics.business.invoiceGenerated(tenant: tenant)
        }
        let scrape = Exposition(String(decoding: metrics.exposition(), as: UTF8.self))
        let family = "cloudbill_invoices_generated_total"
        #expect(scrape.value(family, ["tenant_id": "t1"]) == 2)
        #expect(scrape.value(family, ["tenant_id": "t2"]) == 1)
        #expect(scrape.value(family, ["tenant_id": "__other__"]) == 3)
        #expect(scrape.value(family, ["tenant_id": "t3"]) == nil)
        #expect(scrape.value("cloudbill_metric_tenants_folded_total", ["family": family]) == 3)
    }

    @Test func foldedTenantsCountOnEveryRequestWhetherTheirHandlesAreCachedOrNot() {
        let metrics = ServiceMetrics(service: "fold-test", tenantLimit: 1)
        // t0 is admitted; more folded keys than the handle cache keeps, then 20 of them again.
        let tenants = (0...HTTPMetrics.foldedKeyLimit + 10).map { "t\($0)" }
        for tenant in tenants + tenants.prefix(21) {
            metrics.http.record(method: "GET", route: "/r", status: 200, tenant: tenant, seconds: 0.001, requestBytes: 0, responseBytes: 1)
        }
        let scrape = Exposition(String(decoding: metrics.exposition(), as: UTF8.self))
        let folded = Double(tenants.count - 1 + 20)
        #expect(scrape.value("http_requests_total", ["tenant_id": "t0"]) == 2)
        #expect(scrape.value("http_requests_total", ["tenant_id": "__other__"]) == folded)
        #expect(scrape.value("http_request_duration_seconds_count", ["tenant_id": "__other__"]) == folded)
        #expect(scrape.value("cloudbill_metric_tenants_folded_total", ["family": "http_requests_total"]) == folded)
        #expect(scrape.value("cloudbill_metric_tenants_folded_total", ["family": "http_request_duration_seconds"]) == folded)
    }

    @Test func reservedTenantValuesNeverCountAgainstTheLimit() {
        let guardian = TenantLabelGuard(limit: 1)
        #expect(guardian.labelValue(for: "anonymous") == "anonymous")
        #expect(guardian.labelValue(for: "t1") == "t1")
        #expect(guardian.labelValue(for: "anonymous") == "anonymous")
        #expect(guardian.labelValue(for: "t2") == "__other__")
        #expect(guardian.admittedCount == 1)
    }

    @Test func eachFamilyHasItsOwnLimit() {
        let metrics = ServiceMetrics(service: "guard-test", tenantLimit: 1)
        metrics.business.invoiceGenerated(tenant: "t1")
        metrics.business.paymentAttempted(tenant: "t2")
        let scrape = Exposition(String(decoding: metrics.exposition(), as: UTF8.self))
        #expect(scrape.value("cloudbill_invoices_generated_total", ["tenant_id": "t1"]) == 1)
        #expect(scrape.value("cloudbill_payments_total", ["tenant_id": "t2"]) == 1)
    }
}
