import Testing
@testable import loadgen

@Suite struct ArrivalScheduleTests {
    @Test func constantHundredPerSecondForAMinuteSchedulesExactlySixThousand() {
        let times = Array(ArrivalSchedule(shape: .constant(100), duration: 60))
        #expect(times.count == 6000)
        #expect(times.first == 0.005)
        #expect(zip(times, times.dropFirst()).allSatisfy { abs($1 - $0 - 0.01) < 1e-9 })
        #expect(times.last! < 60)
    }

    @Test func rampFromZeroToHundredOverTenSecondsSchedulesFiveHundred() {
        let times = Array(ArrivalSchedule(shape: .ramp(from: 0, to: 100), duration: 10))
        #expect(times.count == 500)
        // The curve's area up to t is 5·t²: half of the requests are due in the last 2.93 s.
        #expect(times.filter { $0 < 10 / 2.0.squareRoot() }.count == 250)
        #expect(zip(times, times.dropFirst()).allSatisfy { $1 > $0 })
    }

    @Test func stepsSplitThePhaseIntoEqualStretches() {
        let times = Array(ArrivalSchedule(shape: .steps([10, 20, 30]), duration: 3))
        #expect(times.count == 60)
        #expect(times.filter { $0 < 1 }.count == 10)
        #expect(times.filter { $0 >= 1 && $0 < 2 }.count == 20)
    }

    @Test func poissonSpacingKeepsTheRateAndIsReproducibleFromTheSeed() {
        let first = Array(ArrivalSchedule(shape: .constant(200), duration: 60, spacing: .poisson, seed: 7))
        let again = Array(ArrivalSchedule(shape: .constant(200), duration: 60, spacing: .poisson, seed: 7))
        let other = Array(ArrivalSchedule(shape: .constant(200), duration: 60, spacing: .poisson, seed: 8))
        #expect(first == again)
        #expect(first != other)
        #expect(abs(Double(first.count) - 12_000) < 12_000 * 0.03)
        let gaps = zip(first, first.dropFirst()).map { $1 - $0 }
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        let variance = gaps.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(gaps.count)
        // Exponential gaps: the standard deviation equals the mean (uniform spacing has none).
        #expect(abs(variance.squareRoot() / mean - 1) < 0.05)
    }

    @Test func zeroRatePhaseSchedulesNothing() {
        #expect(Array(ArrivalSchedule(shape: .constant(0), duration: 30)).isEmpty)
    }
}

@Suite struct RequestPlanTests {
    @Test func theSameSeedGivesTheSameRequestSequence() {
        let weights = TenantWeights(count: 10, seed: 42)
        var first = RequestPlanner(seed: 42, tenants: weights)
        var second = RequestPlanner(seed: 42, tenants: TenantWeights(count: 10, seed: 42))
        var other = RequestPlanner(seed: 43, tenants: TenantWeights(count: 10, seed: 43))
        let a = (0..<5000).map { _ in first.next() }
        let b = (0..<5000).map { _ in second.next() }
        let c = (0..<5000).map { _ in other.next() }
        #expect(a == b)
        #expect(a != c)
        #expect(Set(a.map(\.operation)).count == Operation.defaultWeights.count)
    }

    @Test func tenantWeightsFollowZipfWithRanksShuffledBySeed() {
        let weights = TenantWeights(count: 10, exponent: 1, seed: 3)
        let sorted = weights.weights.sorted(by: >)
        #expect(abs(weights.weights.reduce(0, +) - 1) < 1e-9)
        for rank in 1..<10 { #expect(abs(sorted[rank] - sorted[0] / Double(rank + 1)) < 1e-9) }
        #expect(weights.weights != TenantWeights(count: 10, exponent: 1, seed: 4).weights)
        var planner = RequestPlanner(seed: 3, tenants: weights)
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<100_000 { counts[planner.next().tenant] += 1 }
        let heaviest = weights.weights.firstIndex(of: sorted[0])!
        #expect(abs(Double(counts[heaviest]) / 100_000 - sorted[0]) < 0.01)
    }
}
