import CloudBillInstrumentation
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Opens file descriptors and never closes them, as a leak of connections or files would,
/// until the process holds `share` of its descriptor limit (`RLIMIT_NOFILE`, soft); closes
/// them all on ``stop()``.
///
/// It grows by `perSecond` descriptors a second, in ten steps a second, on a task of its own;
/// each step counts the process's open descriptors again, so descriptors the service opens
/// or closes meanwhile count. It never opens more than ``maximumDescriptors``: under a limit
/// so high that its share is more, the process does not get near the limit (run the service
/// with a lower one, as `scripts/stack` does).
final class DescriptorLeak: Sendable {
    let share: Double
    let perSecond: Int
    static let maximumDescriptors = 65_536
    private let held = Mutex<[Int32]>([])
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(share: Double, perSecond: Int) {
        self.share = share
        self.perSecond = perSecond
        task.withLock { $0 = Task.detached { [self] in await grow() } }
    }

    /// How many descriptors it holds.
    var count: Int { held.withLock { $0.count } }

    /// Stops growing and closes every descriptor it opened.
    func stop() {
        task.withLock { $0?.cancel() }
        let descriptors = held.withLock { held in
            defer { held = [] }
            return held
        }
        for descriptor in descriptors { close(descriptor) }
    }

    // No deinit: the growing task holds the leak until stop() cancels it, and the fault
    // injector calls stop() on every path that drops one.

    private func grow() async {
        let step = max(1, perSecond / 10)
        while !Task.isCancelled {
            if let stats = ProcessStats.current(), stats.maxFileDescriptors > 0 {
                let goal = Int(share * stats.maxFileDescriptors) - Int(stats.openFileDescriptors)
                let room = Self.maximumDescriptors - count
                let opening = min(step, goal, room)
                if opening > 0 {
                    var opened: [Int32] = []
                    for _ in 0..<opening {
                        let descriptor = open("/dev/null", O_RDONLY | O_CLOEXEC)
                        guard descriptor >= 0 else { break }
                        opened.append(descriptor)
                    }
                    let kept = held.withLock { held -> Bool in
                        guard !Task.isCancelled else { return false }
                        held += opened
                        return true
                    }
                    if !kept { for descriptor in opened { close(descriptor) } }
                }
            }
            guard (try? await Task.sleep(for: .milliseconds(100))) != nil else { return }
        }
    }
}
