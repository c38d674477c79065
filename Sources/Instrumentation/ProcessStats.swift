import CProcessStats
#if canImport(Glibc)
import Glibc
#endif

/// One reading of this process's resource use, from /proc/self and the allocator.
public struct ProcessStats: Sendable, Equatable {
    public var userCPUSeconds: Double
    public var systemCPUSeconds: Double
    public var startTimeSeconds: Double
    public var residentMemoryBytes: Double
    public var virtualMemoryBytes: Double
    public var heapBytes: Double
    public var openFileDescriptors: Double
    public var maxFileDescriptors: Double

    public var cpuSeconds: Double { userCPUSeconds + systemCPUSeconds }

    /// Reads the current process's statistics; nil where /proc is not mounted.
    public static func current() -> ProcessStats? {
        guard let stat = readFile("/proc/self/stat"), let bootTime = Self.bootTime else { return nil }
        // Fields follow the command name, which is in parentheses and may hold spaces.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state) of proc(5); field n is fields[n - 3].
        func field(_ n: Int) -> Double? { fields.count > n - 3 ? Double(fields[n - 3]) : nil }
        guard let utime = field(14), let stime = field(15), let start = field(22),
              let vsize = field(23), let rss = field(24) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        var limit = rlimit()
        let maxFDs = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Double(limit.rlim_cur) : 0
        return ProcessStats(
            userCPUSeconds: utime / ticks,
            systemCPUSeconds: stime / ticks,
            startTimeSeconds: bootTime + start / ticks,
            residentMemoryBytes: rss * pageSize,
            virtualMemoryBytes: vsize,
            heapBytes: Double(cprocessstats_heap_bytes()),
            openFileDescriptors: Double(countOpenFileDescriptors()),
            maxFileDescriptors: maxFDs
        )
    }

    /// Seconds since the epoch at which the machine booted (`btime` of /proc/stat).
    static let bootTime: Double? = {
        guard let text = readFile("/proc/stat") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst("btime ".count))
        }
        return nil
    }()

    private static func countOpenFileDescriptors() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(dir) }
        var count = 0
        // d_name is read in place, up to its terminator: a record is only as long as its name,
        // so copying the whole 256-byte field reads past the last record of the directory
        // buffer (and faults when that buffer ends a page, as with thousands of descriptors).
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        while let entry = readdir(dir) {
            let name = UnsafeRawPointer(entry).advanced(by: nameOffset).assumingMemoryBound(to: UInt8.self)
            let dot = UInt8(ascii: ".")
            let isDot = name[0] == dot && (name[1] == 0 || (name[1] == dot && name[2] == 0))
            if !isDot { count += 1 }
        }
        // The descriptor opendir itself holds is not the process's own.
        return max(0, count - 1)
    }

    private static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
