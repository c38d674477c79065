import ArgumentParser

@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloudbill-bench",
        abstract: "Measures CloudBill's hot paths and prints the figures.",
        subcommands: [InstrumentationBenchmark.self]
    )
}

/// Median of measured values.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
}
