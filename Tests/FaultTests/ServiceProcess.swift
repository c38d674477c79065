import CloudBillTestSupport
import Foundation

/// A service running as a process of its own, from the executable built next to the test
/// bundle, so that what its process metrics show is its alone.
final class ServiceProcess {
    let port: Int
    private let process: Process

    private init(port: Int, process: Process) {
        self.port = port
        self.process = process
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// Runs `body` against a fresh `product` (AuthSvc, ...) process, then stops it with SIGTERM.
    static func with<T>(_ product: String, _ body: (ServiceProcess) async throws -> T) async throws -> T {
        let service = try await launch(product)
        do {
            let result = try await body(service)
            service.stop()
            return result
        } catch {
            service.stop()
            throw error
        }
    }

    private static func launch(_ product: String) async throws -> ServiceProcess {
        // The test bundle and the products are built into the same folder.
        let products = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        let executable = products.appendingPathComponent(product)
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw TestFailure("\(executable.path) is not built; build the products with the tests (swift build --build-tests)")
        }
        let postgres = try await PostgresServer.shared()
        let redis = try await RedisServer.shared()
        try? await postgres.psql("CREATE DATABASE cloudbill_fault_process")
        let port = try freePort()
        let process = Process()
        process.executableURL = executable
        process.arguments = ["--port", String(port)]
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = "host=127.0.0.1 port=\(postgres.port) dbname=cloudbill_fault_process user=postgres"
        environment["REDIS_URL"] = "redis://127.0.0.1:\(redis.port)"
        environment["CLOUDBILL_ADMIN_TOKEN"] = FaultFleet.adminToken
        environment["CLOUDBILL_INTERNAL_TOKEN"] = FaultFleet.internalToken
        environment["LOG_LEVEL"] = "warning"
        environment["CLOUDBILL_FAULTS"] = "on"
        process.environment = environment
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("cloudbill-\(product)-\(port).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let service = ServiceProcess(port: port, process: process)
        do {
            try await FaultFleet.waitUntilReady(port: port, timeout: .seconds(30))
        } catch {
            service.stop()
            throw TestFailure("\(product) did not become ready; its log: \(log.path)")
        }
        return service
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    func scrape() async throws -> Exposition {
        Exposition(try await HTTP.send("GET", url + "/metrics").text)
    }

    func faults(_ method: String, body: String? = nil) async throws -> HTTP.Response {
        try await HTTP.send(
            method, url + "/admin/faults", rawBody: body.map { Array($0.utf8) },
            headers: ["X-Admin-Token": FaultFleet.adminToken, "Content-Type": "application/json"]
        )
    }
}
