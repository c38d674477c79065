import Prometheus
import Synchronization

/// A handle kind the registry can create for one label set.
protocol MetricHandle: Sendable {
    static func make(_ definition: MetricDefinition, labels: [(String, String)], in registry: PrometheusCollectorRegistry) -> Self
}

extension Counter: MetricHandle {
    static func make(_ definition: MetricDefinition, labels: [(String, String)], in registry: PrometheusCollectorRegistry) -> Counter {
        registry.makeCounter(name: definition.name, labels: labels, help: definition.help)
    }
}

extension Gauge: MetricHandle {
    static func make(_ definition: MetricDefinition, labels: [(String, String)], in registry: PrometheusCollectorRegistry) -> Gauge {
        registry.makeGauge(name: definition.name, labels: labels, help: definition.help)
    }
}

extension ValueHistogram: MetricHandle {
    static func make(_ definition: MetricDefinition, labels: [(String, String)], in registry: PrometheusCollectorRegistry) -> ValueHistogram {
        registry.makeValueHistogram(name: definition.name, labels: labels, buckets: definition.buckets, help: definition.help)
    }
}

/// One metric family of one service, with its handles cached by label values so that
/// recording does not take the registry's lock, and its tenant values bounded.
///
/// Callers pass every label value except `service`, in catalogue order.
final class MetricFamily<Handle: MetricHandle>: Sendable {
    let definition: MetricDefinition
    private let service: String
    private let registry: PrometheusCollectorRegistry
    private let tenantIndex: Int?
    private let tenantGuard: TenantLabelGuard?
    private let folded: Counter?
    private let handles: Mutex<[[String]: Handle]>

    init(
        _ definition: MetricDefinition,
        service: String,
        registry: PrometheusCollectorRegistry,
        tenantLimit: Int
    ) {
        precondition(definition.labelNames.first == MetricCatalog.serviceLabel, "\(definition.name): service must be the first label")
        self.definition = definition
        self.service = service
        self.registry = registry
        self.handles = Mutex([:])
        if let index = definition.labelNames.firstIndex(of: MetricCatalog.tenantLabel) {
            self.tenantIndex = index - 1
            self.tenantGuard = TenantLabelGuard(limit: tenantLimit)
            self.folded = registry.makeCounter(
                name: MetricCatalog.tenantsFoldedTotal.name,
                labels: [("service", service), ("family", definition.name)],
                help: MetricCatalog.tenantsFoldedTotal.help
            )
        } else {
            self.tenantIndex = nil
            self.tenantGuard = nil
            self.folded = nil
        }
    }

    /// The handle for these label values (all but `service`, in catalogue order).
    func handle(_ values: [String]) -> Handle {
        precondition(values.count == definition.labelNames.count - 1, "\(definition.name): wrong number of label values")
        if let handle = handles.withLock({ $0[values] }) { return handle }
        var key = values
        if let tenantIndex, let tenantGuard, let folded {
            let label = tenantGuard.labelValue(for: values[tenantIndex])
            if label != values[tenantIndex] {
                folded.increment()
                key[tenantIndex] = label
            }
        }
        return handles.withLock { cache in
            if let handle = cache[key] { return handle }
            var labels: [(String, String)] = [(MetricCatalog.serviceLabel, service)]
            for (name, value) in zip(definition.labelNames.dropFirst(), key) { labels.append((name, value)) }
            let handle = Handle.make(definition, labels: labels, in: registry)
            cache[key] = handle
            return handle
        }
    }

    /// Admits `tenant` through this family's guard without counting: the label to record,
    /// and the family's fold counter when the tenant was folded (the caller counts each
    /// observation there); for callers that cache handles of several families under one key.
    func admit(_ tenant: String) -> (label: String, fold: Counter?) {
        guard let tenantGuard, let folded else { return (tenant, nil) }
        let label = tenantGuard.labelValue(for: tenant)
        return (label, label == tenant ? nil : folded)
    }
}
