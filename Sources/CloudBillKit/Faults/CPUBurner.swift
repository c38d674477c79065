import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Keeps a share of one core busy on a thread of its own (never Swift's cooperative pool or
/// an event loop), until ``stop()``.
///
/// Every 50 ms period the thread computes until its own CPU clock has advanced by `share`
/// of the period, then sleeps out the rest, so the process's CPU time grows by `share`
/// seconds per second whatever else it does.
final class CPUBurner: Sendable {
    let share: Double
    private let isRunning = Atomic<Bool>(true)
    /// Where the computation's result goes, so the optimiser cannot drop it.
    private let sink = Atomic<UInt64>(0)
    static let periodNanoseconds: Int64 = 50_000_000

    init(share: Double) {
        self.share = share
        let thread = Thread { [self] in burn() }
        thread.name = "cloudbill-cpu-burn"
        thread.start()
    }

    /// Ends the thread within one period.
    func stop() {
        isRunning.store(false, ordering: .relaxed)
    }

    deinit { stop() }

    private func burn() {
        let period = Self.periodNanoseconds
        let busy = Int64(share * Double(period))
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        while isRunning.load(ordering: .relaxed) {
            let start = Self.now(CLOCK_MONOTONIC)
            let cpuStart = Self.now(CLOCK_THREAD_CPUTIME_ID)
            while Self.now(CLOCK_THREAD_CPUTIME_ID) - cpuStart < busy, Self.now(CLOCK_MONOTONIC) - start < period {
                for _ in 0..<4096 {  // xorshift64
                    state ^= state << 13
                    state ^= state >> 7
                    state ^= state << 17
                }
            }
            sink.store(state, ordering: .relaxed)
            let rest = period - (Self.now(CLOCK_MONOTONIC) - start)
            if rest > 0 {
                var pause = timespec(tv_sec: 0, tv_nsec: Int(rest))
                nanosleep(&pause, nil)
            }
        }
    }

    private static func now(_ clock: clockid_t) -> Int64 {
        var time = timespec()
        clock_gettime(clock, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
