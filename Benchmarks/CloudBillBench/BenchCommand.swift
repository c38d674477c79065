import ArgumentParser
import Foundation

@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloudbill-bench",
        abstract: "Measures CloudBill's hot paths and prints the figures.",
        subcommands: [InstrumentationBenchmark.self, StorageBenchmark.self, ServeTarget.self]
    )
}

/// The pool and the cache next to pgbench and redis-benchmark on the same servers.
struct StorageBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage",
        abstract: "SELECT 1 through the pool vs pgbench -S-like load; cache GET vs redis-benchmark."
    )

    @Option(help: "libpq connection string of the PostgreSQL to measure against.")
    var postgres = "host=127.0.0.1 port=5432 dbname=cloudbill user=cloudbill password=cloudbill"

    @Option(help: "Redis host.")
    var redisHost = "127.0.0.1"

    @Option(help: "Redis port.")
    var redisPort = 6379

    @Option(help: "Redis password (the native demo stack's is cloudbill-demo-redis-password).")
    var redisPassword: String?

    @Option(help: "Seconds per measured run.")
    var seconds = 5

    func run() async throws {
        print("load average \(loadAverage())")
        try await runPoolBenchmark(connectionString: postgres, poolSizes: [8, 16], duration: .seconds(seconds))
        try await runRedisBenchmark(host: redisHost, port: redisPort, password: redisPassword, duration: .seconds(seconds))
        print("load average \(loadAverage())")
    }
}

/// The one-minute load average, as /proc/loadavg prints it.
func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? "?"
}

/// Median of measured values.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
}
