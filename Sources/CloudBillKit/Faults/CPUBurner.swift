import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Keeps `share` cores busy on threads of its own (never Swift's cooperative pool or an
/// event loop), until ``stop()``.
///
/// A share above one is spread evenly over `ceil(share)` threads, as a process that keeps
/// several cores busy does: one thread can never use more than one core, and on a
/// contended machine the scheduler gives each runnable thread its turn, so two threads get
/// about twice what one would. Every 50 ms period each thread computes until its own CPU
/// clock has advanced by its part of the period, then sleeps out the rest, so the
/// process's CPU time grows by `share` seconds per second when the cores are free.
final class CPUBurner: Sendable {
    let share: Double
    private let isRunning = Atomic<Bool>(true)
    /// Where the computation's result goes, so the optimiser cannot drop it.
    private let sink = Atomic<UInt64>(0)
    static let periodNanoseconds: Int64 = 50_000_000
    /// The most cores one burner keeps busy (FaultPlan refuses more).
    static let maximumShare: Double = 4

    init(share: Double) {
        self.share = share
        let threads = max(1, Int(share.rounded(.up)))
        let part = share / Double(threads)
        for index in 0..<threads {
            let thread = Thread { [self] in burn(part: part) }
            thread.name = "cloudbill-cpu-burn-\(index)"
            thread.start()
        }
    }

    /// Ends the threads within one period.
    func stop() {
        isRunning.store(false, ordering: .relaxed)
    }

    deinit { stop() }

    private func burn(part: Double) {
        let period = Self.periodNanoseconds
        let busy = Int64(part * Double(period))
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
