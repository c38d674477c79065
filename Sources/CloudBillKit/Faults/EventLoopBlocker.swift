import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Blocks one SwiftNIO event loop, as a blocking call made on it would (a synchronous file
/// read, a blocking driver call in a handler), until ``stop()``.
///
/// The loop runs tasks that each block its thread for `milliseconds`, back to back, and two
/// are always queued: a task submitted to the loop meanwhile (the lag monitor's probe, a
/// channel's read) waits behind at least one whole block. The other loops are untouched.
final class EventLoopBlocker: Sendable {
    let milliseconds: Int
    private let state: State

    private final class State: Sendable {
        let isRunning = Atomic<Bool>(true)
    }

    init(loop: any EventLoop, milliseconds: Int) {
        self.milliseconds = milliseconds
        state = State()
        for _ in 0..<2 { Self.block(loop, milliseconds: milliseconds, state: state) }
    }

    /// Ends within one block.
    func stop() {
        state.isRunning.store(false, ordering: .relaxed)
    }

    deinit { stop() }

    private static func block(_ loop: any EventLoop, milliseconds: Int, state: State) {
        loop.execute {
            guard state.isRunning.load(ordering: .relaxed) else { return }
            usleep(useconds_t(milliseconds) * 1000)
            block(loop, milliseconds: milliseconds, state: state)
        }
    }
}
