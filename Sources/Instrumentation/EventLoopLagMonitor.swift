import NIOCore
import ServiceLifecycle

/// Measures event-loop lag: every `resolution` it schedules a task on every SwiftNIO event
/// loop, and once per `interval` it sets `nodejs_eventloop_lag_seconds` to the largest delay
/// before such a task started during that interval.
///
/// A single probe per interval would see a loop that stalls now and then (a blocking call in
/// some handlers) only when it happened to land in a stall; probing every 20 ms catches any
/// stall longer than that, as Node's `monitorEventLoopDelay` does with its 10 ms resolution.
/// A probe costs a task on each loop: 50 a second per loop at the default resolution.
public struct EventLoopLagMonitor: Service {
    let group: any EventLoopGroup
    let metrics: RuntimeMetrics
    let interval: Duration
    let resolution: Duration

    public init(
        group: any EventLoopGroup, metrics: ServiceMetrics,
        interval: Duration = .seconds(1), resolution: Duration = .milliseconds(20)
    ) {
        self.group = group
        self.metrics = metrics.runtime
        self.interval = interval
        self.resolution = resolution
    }

    /// Schedules a task on every loop, one after the other; returns the largest delay before
    /// one started.
    public func probe() async throws -> Duration {
        var largest = Duration.zero
        for loop in group.makeIterator() {
            let scheduled = ContinuousClock.now
            let started = try await loop.submit { ContinuousClock.now }.get()
            largest = max(largest, started - scheduled)
        }
        return largest
    }

    /// Takes one probe and records it; returns the largest lag in seconds.
    @discardableResult
    public func sample() async throws -> Double {
        let seconds = try await probe().seconds
        metrics.eventLoopLag.set(to: seconds)
        return seconds
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                var window = EventLoopLagWindow(interval: interval, start: .now)
                while !Task.isCancelled {
                    if let largest = window.record(try await probe(), at: .now) {
                        metrics.eventLoopLag.set(to: largest.seconds)
                    }
                    try await Task.sleep(for: resolution)
                }
            }
        } catch is CancellationError {
            // Graceful shutdown: stop sampling.
        }
    }
}

/// The largest lag of each interval: what ``EventLoopLagMonitor`` publishes.
public struct EventLoopLagWindow: Sendable {
    public let interval: Duration
    private var start: ContinuousClock.Instant
    private var largest = Duration.zero

    public init(interval: Duration, start: ContinuousClock.Instant) {
        self.interval = interval
        self.start = start
    }

    /// Adds a probe's lag; once the interval has passed, returns the interval's largest lag
    /// and starts the next interval.
    public mutating func record(_ lag: Duration, at now: ContinuousClock.Instant) -> Duration? {
        largest = max(largest, lag)
        guard now - start >= interval else { return nil }
        defer {
            largest = .zero
            start = now
        }
        return largest
    }
}
