import Foundation

/// A small, fast, seedable generator (SplitMix64): the same seed gives the same numbers on
/// every machine and toolchain, which `SystemRandomNumberGenerator` cannot promise.
struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A double in [0, 1) with 53 random bits.
    mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// An exponentially distributed value with mean 1.
    mutating func exponential() -> Double { -log(1 - unit()) }
}

/// How the request rate moves during one phase, in requests per second.
enum RateShape: Sendable, Equatable, Codable {
    case constant(Double)
    case ramp(from: Double, to: Double)
    /// Equal-length steps over the phase.
    case steps([Double])

    /// The linear pieces of the curve over `duration` seconds.
    func segments(over duration: Double) -> [RateSegment] {
        switch self {
        case .constant(let rate):
            return [RateSegment(start: 0, duration: duration, from: rate, to: rate)]
        case .ramp(let from, let to):
            return [RateSegment(start: 0, duration: duration, from: from, to: to)]
        case .steps(let rates):
            guard !rates.isEmpty else { return [] }
            let length = duration / Double(rates.count)
            return rates.enumerated().map { RateSegment(start: Double($0.offset) * length, duration: length, from: $0.element, to: $0.element) }
        }
    }

    /// The rate at `time` seconds into a phase of `duration` seconds.
    func rate(at time: Double, duration: Double) -> Double {
        for segment in segments(over: duration) where time < segment.start + segment.duration || segment.start + segment.duration >= duration {
            let progress = segment.duration > 0 ? min(max((time - segment.start) / segment.duration, 0), 1) : 0
            return segment.from + (segment.to - segment.from) * progress
        }
        return 0
    }

    var description: String {
        switch self {
        case .constant(let rate): return "\(formatRate(rate))/s"
        case .ramp(let from, let to): return "ramp \(formatRate(from))→\(formatRate(to))/s"
        case .steps(let rates): return "steps " + rates.map(formatRate).joined(separator: ",") + "/s"
        }
    }
}

func formatRate(_ rate: Double) -> String {
    rate == rate.rounded() ? String(Int(rate)) : String(format: "%.1f", rate)
}

/// A piece of the rate curve where the rate moves linearly from `from` to `to`.
struct RateSegment: Sendable, Equatable {
    let start: Double
    let duration: Double
    let from: Double
    let to: Double

    /// Requests due in the whole segment: the area under the curve.
    var count: Double { (from + to) / 2 * duration }

    /// The time into the segment at which `n` requests have become due (0 ≤ n ≤ count).
    func time(atCount n: Double) -> Double {
        guard n > 0 else { return 0 }
        let slope = duration > 0 ? (to - from) / duration : 0
        // Solves from·τ + slope·τ²/2 = n in the form that stays stable when slope → 0.
        let root = (from * from + 2 * slope * n).squareRoot()
        let denominator = from + root
        guard denominator > 0 else { return duration }
        return min(2 * n / denominator, duration)
    }
}

/// How arrivals are spaced along the rate curve.
enum ArrivalSpacing: String, Sendable, Codable {
    /// Evenly: the k-th request is due when the curve's area reaches k + ½.
    case uniform
    /// A Poisson process with the curve as its intensity (exponential gaps in area).
    case poisson
}

/// The times, in seconds from a phase's start, at which its requests are due: computed
/// from the rate curve alone, never from how fast earlier requests were answered.
struct ArrivalSchedule: Sequence, Sendable {
    let segments: [RateSegment]
    let spacing: ArrivalSpacing
    let seed: UInt64

    init(shape: RateShape, duration: Double, spacing: ArrivalSpacing = .uniform, seed: UInt64 = 0) {
        self.segments = shape.segments(over: duration).filter { $0.duration > 0 }
        self.spacing = spacing
        self.seed = seed
    }

    /// Requests the curve asks for (for uniform spacing, exactly what the sequence yields
    /// up to rounding the last half request).
    var expectedCount: Double { segments.reduce(0) { $0 + $1.count } }

    func makeIterator() -> Iterator { Iterator(schedule: self) }

    struct Iterator: IteratorProtocol {
        let schedule: ArrivalSchedule
        var generator: SeededGenerator
        var segmentIndex = 0
        /// Area of the segments before `segmentIndex`.
        var areaBefore = 0.0
        var nextArea: Double
        var index = 0

        init(schedule: ArrivalSchedule) {
            self.schedule = schedule
            self.generator = SeededGenerator(seed: schedule.seed ^ 0xA55A_5AA5_0F0F_F0F0)
            self.nextArea = 0
            self.nextArea = advance()
        }

        private mutating func advance() -> Double {
            switch schedule.spacing {
            case .uniform: return Double(index) + 0.5
            case .poisson: return nextArea + generator.exponential()
            }
        }

        mutating func next() -> Double? {
            while segmentIndex < schedule.segments.count {
                let segment = schedule.segments[segmentIndex]
                let local = nextArea - areaBefore
                if local < segment.count {
                    let time = segment.start + segment.time(atCount: local)
                    index += 1
                    nextArea = advance()
                    return time
                }
                areaBefore += segment.count
                segmentIndex += 1
            }
            return nil
        }
    }
}
