import CloudBillInstrumentation
import CloudBillTestSupport
import Foundation
import NIOCore
import NIOPosix
import Testing

private func read(_ metrics: ServiceMetrics) -> Exposition {
    Exposition(String(decoding: metrics.exposition(), as: UTF8.self))
}

@Suite(.serialized) struct RuntimeMetricsTests {
    @Test func cpuSecondsGrowAfterCPUWork() throws {
        let metrics = ServiceMetrics(service: "runtime-test")
        let before = try #require(read(metrics).value("process_cpu_seconds_total", [:]))
        // Spin until this thread has used 0.4 s of CPU by the kernel's own count (on a busy
        // machine that takes longer than 0.4 s of wall time); the kernel counts in 10 ms ticks.
        func threadCPUSeconds() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        }
        let spinStart = threadCPUSeconds()
        let deadline = ContinuousClock.now + .seconds(30)
        var x: UInt64 = 1
        while threadCPUSeconds() - spinStart < 0.4, ContinuousClock.now < deadline {
            for i in 0..<100_000 { x = x &* 6364136223846793005 &+ UInt64(i) }
        }
        #expect(x != 0)
        let scrape = read(metrics)
        let after = try #require(scrape.value("process_cpu_seconds_total", [:]))
        #expect(after - before >= 0.25, "CPU seconds went from \(before) to \(after)")
        let user = try #require(scrape.value("process_cpu_user_seconds_total", [:]))
        let system = try #require(scrape.value("process_cpu_system_seconds_total", [:]))
        #expect(abs(user + system - after) < 1e-6)
    }

    @Test func memoryAndDescriptorsAreRead() throws {
        let scrape = read(ServiceMetrics(service: "runtime-test"))
        let rss = try #require(scrape.value("process_resident_memory_bytes", [:]))
        let virtual = try #require(scrape.value("process_virtual_memory_bytes", [:]))
        #expect(rss > 1_000_000 && rss < virtual)
        #expect(try #require(scrape.value("process_heap_bytes", [:])) > 0)
        let open = try #require(scrape.value("process_open_fds", [:]))
        let max = try #require(scrape.value("process_max_fds", [:]))
        #expect(open >= 3 && open < max)
        let start = try #require(scrape.value("process_start_time_seconds", [:]))
        let now = Date().timeIntervalSince1970
        #expect(start <= now && start > now - 86_400)
    }

    @Test func heapFollowsTheAllocator() throws {
        let metrics = ServiceMetrics(service: "runtime-test")
        let before = try #require(read(metrics).value("process_heap_bytes", [:]))
        let size = 64 * 1024 * 1024
        let block = try #require(malloc(size))
        memset(block, 1, size)
        let during = try #require(read(metrics).value("process_heap_bytes", [:]))
        free(block)
        let after = try #require(read(metrics).value("process_heap_bytes", [:]))
        #expect(during - before >= Double(size) * 0.95, "heap went from \(before) to \(during)")
        #expect(during - after >= Double(size) * 0.95, "heap fell back to \(after)")
    }

    @Test func eventLoopLagIsMeasured() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let metrics = ServiceMetrics(service: "runtime-test")
        let monitor = EventLoopLagMonitor(group: group, metrics: metrics)
        let idle = try await monitor.sample()
        // Generous on a busy machine, and still far below the blocked sample.
        #expect(idle < 0.25, "idle lag \(idle)")
        // Block the only loop for 1 s; a task scheduled meanwhile starts that much later.
        group.next().execute { usleep(1_000_000) }
        let blocked = try await monitor.sample()
        #expect(blocked >= 0.9, "lag \(blocked)")
        #expect(read(metrics).value("nodejs_eventloop_lag_seconds", [:]) == blocked)
        try await group.shutdownGracefully()
    }

    @Test func garbageCollectionHistogramStaysEmpty() throws {
        let metrics = ServiceMetrics(service: "runtime-test")
        metrics.http.record(method: "GET", route: "/", status: 200, tenant: "anonymous", seconds: 0.1, requestBytes: 0, responseBytes: 0)
        let scrape = read(metrics)
        #expect(scrape.value("nodejs_gc_duration_seconds_count", [:]) == 0)
        #expect(scrape.help["nodejs_gc_duration_seconds"]?.contains("ARC") == true)
    }
}
