import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Blocks one SwiftNIO event loop, as a blocking call made on it would (a synchronous file
/// read, a blocking driver call in a handler), until ``stop()``.
///
/// The loop runs a task that blocks its thread for `milliseconds`, then gets one tick (a
/// millisecond) before the next block: in that tick it handles the I/O that became ready and
/// runs the tasks submitted meanwhile. So a task submitted to that loop (a channel's read or
/// write, the lag probe) waits up to a whole block, and the loop's connections stay alive,
/// only slow. The other loops are untouched.
///
/// A block that re-queued itself at once would starve the loop instead: SwiftNIO runs the
/// queued tasks until none is left before it polls for I/O, so the connections on that loop
/// would never be read again.
final class EventLoopBlocker: Sendable {
    let milliseconds: Int
    private let state: State

    private final class State: Sendable {
        let isRunning = Atomic<Bool>(true)
    }

    init(loop: any EventLoop, milliseconds: Int) {
        self.milliseconds = milliseconds
        state = State()
        let state = state
        loop.execute { Self.block(loop, milliseconds: milliseconds, state: state) }
    }

    /// Ends within one block.
    func stop() {
        state.isRunning.store(false, ordering: .relaxed)
    }

    deinit { stop() }

    /// Runs on the loop: one block, then the next one tick later.
    private static func block(_ loop: any EventLoop, milliseconds: Int, state: State) {
        guard state.isRunning.load(ordering: .relaxed) else { return }
        usleep(useconds_t(milliseconds) * 1000)
        loop.scheduleTask(in: .milliseconds(1)) { block(loop, milliseconds: milliseconds, state: state) }
    }
}
