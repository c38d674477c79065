import Prometheus
import Synchronization

/// The process and event-loop families of one service, refreshed at each scrape.
public final class RuntimeMetrics: Sendable {
    private let cpuTotal: Counter
    private let cpuUser: Counter
    private let cpuSystem: Counter
    private let startTime: Gauge
    private let residentMemory: Gauge
    private let virtualMemory: Gauge
    private let heap: Gauge
    private let openFDs: Gauge
    private let maxFDs: Gauge
    let eventLoopLag: Gauge
    /// Registered so the family is exposed; Swift has no garbage collector, so it is never observed.
    private let gcDuration: ValueHistogram
    /// CPU seconds already added to the counters (user, system).
    private let countedCPU: Mutex<(user: Double, system: Double)>

    init(service: String, registry: PrometheusCollectorRegistry) {
        let labels = [("service", service)]
        func counter(_ d: MetricDefinition) -> Counter { registry.makeCounter(name: d.name, labels: labels, help: d.help) }
        func gauge(_ d: MetricDefinition) -> Gauge { registry.makeGauge(name: d.name, labels: labels, help: d.help) }
        cpuTotal = counter(MetricCatalog.processCPUSecondsTotal)
        cpuUser = counter(MetricCatalog.processCPUUserSecondsTotal)
        cpuSystem = counter(MetricCatalog.processCPUSystemSecondsTotal)
        startTime = gauge(MetricCatalog.processStartTimeSeconds)
        residentMemory = gauge(MetricCatalog.processResidentMemoryBytes)
        virtualMemory = gauge(MetricCatalog.processVirtualMemoryBytes)
        heap = gauge(MetricCatalog.processHeapBytes)
        openFDs = gauge(MetricCatalog.processOpenFDs)
        maxFDs = gauge(MetricCatalog.processMaxFDs)
        eventLoopLag = gauge(MetricCatalog.eventLoopLag)
        let gc = MetricCatalog.gcDuration
        gcDuration = registry.makeValueHistogram(name: gc.name, labels: labels, buckets: gc.buckets, help: gc.help)
        countedCPU = Mutex((0, 0))
        collect()
    }

    /// Reads /proc/self and the allocator and updates the process families.
    public func collect() {
        guard let stats = ProcessStats.current() else { return }
        countedCPU.withLock { counted in
            // The kernel's counters only grow; the Prometheus counters follow them by increments.
            let user = max(0, stats.userCPUSeconds - counted.user)
            let system = max(0, stats.systemCPUSeconds - counted.system)
            cpuUser.increment(by: user)
            cpuSystem.increment(by: system)
            cpuTotal.increment(by: user + system)
            counted = (counted.user + user, counted.system + system)
        }
        startTime.set(to: stats.startTimeSeconds)
        residentMemory.set(to: stats.residentMemoryBytes)
        virtualMemory.set(to: stats.virtualMemoryBytes)
        heap.set(to: stats.heapBytes)
        openFDs.set(to: stats.openFileDescriptors)
        maxFDs.set(to: stats.maxFileDescriptors)
    }
}
