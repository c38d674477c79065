import NIOCore
import ServiceLifecycle

/// Measures event-loop lag: once a second it schedules a task on every SwiftNIO event loop
/// and sets `nodejs_eventloop_lag_seconds` to the largest delay before a task started.
public struct EventLoopLagMonitor: Service {
    let group: any EventLoopGroup
    let metrics: RuntimeMetrics
    let interval: Duration

    public init(group: any EventLoopGroup, metrics: ServiceMetrics, interval: Duration = .seconds(1)) {
        self.group = group
        self.metrics = metrics.runtime
        self.interval = interval
    }

    /// Takes one sample on every loop and records it; returns the largest lag in seconds.
    @discardableResult
    public func sample() async throws -> Double {
        var largest = Duration.zero
        for loop in group.makeIterator() {
            let scheduled = ContinuousClock.now
            let started = try await loop.submit { ContinuousClock.now }.get()
            largest = max(largest, started - scheduled)
        }
        let seconds = largest.seconds
        metrics.eventLoopLag.set(to: seconds)
        return seconds
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try await sample()
                    try await Task.sleep(for: interval)
                }
            }
        } catch is CancellationError {
            // Graceful shutdown: stop sampling.
        }
    }
}
