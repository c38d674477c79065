import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Memory the process really holds: an anonymous private mapping with every page written,
/// so it is resident (`process_resident_memory_bytes`), until ``release()`` unmaps it.
///
/// Mapped directly rather than through malloc, so that releasing it returns every page to
/// the kernel at once; `process_heap_bytes`, which counts what malloc holds, does not include it.
final class MemoryBallast: Sendable {
    let megabytes: Int
    /// The mapping's address, nil once released; the mutex makes release happen once.
    private let address: Mutex<UInt?>
    private var byteCount: Int { megabytes << 20 }

    private init(megabytes: Int, address: UInt) {
        self.megabytes = megabytes
        self.address = Mutex(address)
    }

    /// Maps `megabytes` MiB and writes every page, on NIO's blocking-work threads.
    static func allocate(megabytes: Int) async throws -> MemoryBallast {
        try await NIOThreadPool.singleton.runIfActive {
            let byteCount = megabytes << 20
            let region = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let region, region != MAP_FAILED else { throw BallastError.mappingFailed(megabytes: megabytes) }
            // Writing makes each page resident; a page only read would stay the shared zero page.
            memset(region, 0x5A, byteCount)
            return MemoryBallast(megabytes: megabytes, address: UInt(bitPattern: region))
        }
    }

    /// Unmaps the memory; the resident size drops by as much at once.
    func release() {
        guard let address = address.withLock({ value -> UInt? in defer { value = nil }; return value }) else { return }
        munmap(UnsafeMutableRawPointer(bitPattern: address), byteCount)
    }

    deinit { release() }
}

/// The kernel refused the ballast's mapping.
struct BallastError: Error {
    static func mappingFailed(megabytes: Int) -> BallastError { BallastError(megabytes: megabytes) }
    let megabytes: Int
}
