import ArgumentParser
import CloudBillInstrumentation
import Foundation

/// The cost of recording one request and of rendering a large `/metrics`.
struct InstrumentationBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "instrumentation",
        abstract: "Recording cost per request and /metrics render time for 100 tenants x 10 routes x 5 statuses."
    )

    @Option(help: "Requests recorded per timed round.")
    var requests = 1_000_000

    @Option(help: "Timed rounds; the median is reported.")
    var rounds = 5

    func run() async throws {
        let tenants = (0..<100).map { "tenant-\($0)" }
        let routes = (0..<10).map { "/api/v1/resource\($0)/{id}" }
        let statuses = [200, 201, 404, 422, 503]
        let methods = ["GET", "POST"]

        // Recording: the path HTTPMetricsMiddleware takes once per request, with its
        // handles already cached as they are in a running service.
        let metrics = ServiceMetrics(service: "bench")
        let combinations = tenants.count * routes.count * statuses.count
        for i in 0..<combinations {
            record(metrics, i, tenants, routes, statuses, methods)
        }
        var perRequest: [Double] = []
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            for i in 0..<requests { record(metrics, i, tenants, routes, statuses, methods) }
            perRequest.append((ContinuousClock.now - start).seconds / Double(requests))
        }

        // Two threads recording at once, as two event loops do.
        let contended = await withTaskGroup(of: Double.self) { group in
            for worker in 0..<2 {
                group.addTask {
                    let start = ContinuousClock.now
                    for i in 0..<requests { record(metrics, i &+ worker * 7, tenants, routes, statuses, methods) }
                    return (ContinuousClock.now - start).seconds / Double(requests)
                }
            }
            var worst = 0.0
            for await value in group { worst = max(worst, value) }
            return worst
        }

        // Rendering: a registry holding every combination.
        var renderTimes: [Double] = []
        var bytes = 0
        for _ in 0..<max(rounds, 10) {
            let start = ContinuousClock.now
            bytes = metrics.exposition().count
            renderTimes.append((ContinuousClock.now - start).seconds)
        }
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        let series = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.count

        print("instrumentation benchmark (\(ProcessInfo.processInfo.activeProcessorCount) cores)")
        print(String(format: "  record one request:            %7.0f ns  (median of %d rounds of %d; target <= 1000 ns)", median(perRequest) * 1e9, rounds, requests))
        print(String(format: "  record, 2 threads at once:     %7.0f ns  per request per thread", contended * 1e9))
        print(String(format: "  render /metrics:               %7.2f ms  (median of %d; %d series lines, %d KiB; target <= 50 ms)", median(renderTimes) * 1e3, renderTimes.count, series, bytes / 1024))
    }
}

@inline(__always)
private func record(_ metrics: ServiceMetrics, _ i: Int, _ tenants: [String], _ routes: [String], _ statuses: [Int], _ methods: [String]) {
    let tenant = tenants[i % tenants.count]
    let route = routes[(i / tenants.count) % routes.count]
    let status = statuses[(i / (tenants.count * routes.count)) % statuses.count]
    metrics.http.record(
        method: methods[i & 1], route: route, status: status, tenant: tenant,
        seconds: Double(i % 1000) * 0.0001, requestBytes: 120, responseBytes: 800
    )
}
