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
        let shape = Shape(tenants: 100, routes: 10, statuses: [200, 201, 404, 422, 503], methods: ["GET", "POST"])

        // Recording: the path HTTPMetricsMiddleware takes once per request, with its
        // handles already cached as they are in a running service.
        let metrics = ServiceMetrics(service: "bench")
        let single = medianCost(shape, metrics)

        // Two threads recording at once, as two event loops do, each through every series.
        var contended: [Double] = []
        for _ in 0..<rounds {
            contended.append(await withTaskGroup(of: Double.self) { group in
                for worker in 0..<2 {
                    group.addTask {
                        let start = ContinuousClock.now
                        for i in 0..<requests { shape.record(metrics, i &+ worker &* 7) }
                        return (ContinuousClock.now - start).seconds / Double(requests)
                    }
                }
                var worst = 0.0
                for await value in group { worst = max(worst, value) }
                return worst
            })
        }

        // Tenants past the label guard's limit (1,000): 1,100 tenants, 100 of them folded
        // into __other__ on every request, next to 100 tenants, on the same routes.
        func tenantsCost(_ tenants: Int) -> Double {
            medianCost(Shape(tenants: tenants, routes: 10, statuses: [200], methods: ["GET"]), ServiceMetrics(service: "bench-tenants"))
        }
        let hundred = tenantsCost(100)
        let thousand = tenantsCost(1_000)
        let elevenHundred = tenantsCost(1_100)

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
        let requestSeries = text.split(separator: "\n").filter { $0.hasPrefix("http_requests_total{") }.count

        let double = median(contended)
        print("instrumentation benchmark (\(ProcessInfo.processInfo.activeProcessorCount) cores, load average \(loadAverage()))")
        print(String(format: "  record one request:            %7.0f ns  (median of %d rounds of %d over %d http_requests_total series; target <= 1000 ns)", single * 1e9, rounds, requests, requestSeries))
        print(String(format: "  record, 2 threads at once:     %7.0f ns  per request per thread (%.2fx one thread; target <= 1.3x)", double * 1e9, double / single))
        print(String(format: "  record, 100 tenants:           %7.0f ns", hundred * 1e9))
        print(String(format: "  record, 1,000 tenants:         %7.0f ns  (%.2fx 100 tenants: ten times the series, none folded)", thousand * 1e9, thousand / hundred))
        print(String(format: "  record, 1,100 tenants:         %7.0f ns  (%.2fx 100 tenants, %.2fx 1,000; 100 folded into __other__; target <= 1.5x 100)", elevenHundred * 1e9, elevenHundred / hundred, elevenHundred / thousand))
        print(String(format: "  render /metrics:               %7.2f ms  (median of %d; %d series lines, %d KiB; target <= 50 ms)", median(renderTimes) * 1e3, renderTimes.count, series, bytes / 1024))
    }
}

extension InstrumentationBenchmark {
    /// Records every combination of `shape` once (the handles cached, as in a running
    /// service), then returns the median time per recorded request over `rounds` rounds.
    func medianCost(_ shape: Shape, _ metrics: ServiceMetrics) -> Double {
        for i in 0..<shape.combinations { shape.record(metrics, i) }
        var costs: [Double] = []
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            for i in 0..<requests { shape.record(metrics, i) }
            costs.append((ContinuousClock.now - start).seconds / Double(requests))
        }
        return median(costs)
    }
}

/// Which label values the recorded requests cycle through: every combination of tenant,
/// route, status and method once per `combinations` requests.
struct Shape: Sendable {
    let tenants: [String]
    let routes: [String]
    let statuses: [Int]
    let methods: [String]

    init(tenants: Int, routes: Int, statuses: [Int], methods: [String]) {
        self.tenants = (0..<tenants).map { "tenant-\($0)" }
        self.routes = (0..<routes).map { "/api/v1/resource\($0)/{id}" }
        self.statuses = statuses
        self.methods = methods
    }

    var combinations: Int { tenants.count * routes.count * statuses.count * methods.count }

    @inline(__always)
    func record(_ metrics: ServiceMetrics, _ i: Int) {
        var rest = i
        let tenant = tenants[rest % tenants.count]; rest /= tenants.count
        let route = routes[rest % routes.count]; rest /= routes.count
        let status = statuses[rest % statuses.count]; rest /= statuses.count
        let method = methods[rest % methods.count]
        metrics.http.record(
            method: method, route: route, status: status, tenant: tenant,
            seconds: Double(i % 1000) * 0.0001, requestBytes: 120, responseBytes: 800
        )
    }
}
