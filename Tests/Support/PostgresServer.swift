import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL 15 cluster on 127.0.0.1, in a temporary directory, for tests.
///
/// Built with Debian's `postgresql-15` binaries. PostgreSQL refuses to run as root, so as root
/// the cluster belongs to the `postgres` user and its commands run through `runuser`.
/// Durability is off (`fsync=off`): the data is thrown away.
public final class PostgresServer: Sendable {
    public static let binaries = URL(fileURLWithPath: "/usr/lib/postgresql/15/bin")

    public let port: Int
    public let directory: URL
    private var data: URL { directory.appendingPathComponent("data") }
    private var log: URL { directory.appendingPathComponent("server.log") }

    /// A libpq connection string for the `postgres` database as the `postgres` superuser.
    public var connectionString: String { "host=127.0.0.1 port=\(port) dbname=postgres user=postgres" }

    private init(port: Int, directory: URL) {
        self.port = port
        self.directory = directory
    }

    /// Creates a cluster and starts it.
    public static func launch() async throws -> PostgresServer {
        let directory = try makeTemporaryDirectory("cloudbill-postgres")
        let server = PostgresServer(port: try freePort(), directory: directory)
        if getuid() == 0 {
            try await runCommand(["/usr/bin/chown", "-R", "postgres:postgres", directory.path], log: server.log)
            try await runCommand(["/usr/bin/chown", "postgres:postgres", server.log.path], log: server.log)
        }
        try await server.run("initdb", ["-D", server.data.path, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        registerForExit(server) { [directory, data = server.data] in
            runCommandSynchronously(asPostgres(["pg_ctl", "-D", data.path, "-m", "immediate", "-w", "stop"]))
            try? FileManager.default.removeItem(at: directory)
        }
        try await server.start()
        return server
    }

    /// Creates and starts a cluster for `body` alone, and removes it afterwards.
    public static func with<T>(_ body: (PostgresServer) async throws -> T) async throws -> T {
        let server = try await launch()
        do {
            let result = try await body(server)
            await server.destroy()
            return result
        } catch {
            await server.destroy()
            throw error
        }
    }

    /// Starts the stopped server on the same port and data.
    public func start() async throws {
        try await run("pg_ctl", [
            "-D", data.path, "-l", log.path, "-w", "-t", "30",
            "-o", "-c port=\(port) -c listen_addresses=127.0.0.1 -c unix_socket_directories='\(directory.path)' "
                + "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            "start",
        ])
    }

    /// Stops the server the way an operator's restart does (`pg_ctl stop -m fast`): open
    /// sessions are terminated with `57P01` and their sockets closed.
    public func stop() async throws {
        try await run("pg_ctl", ["-D", data.path, "-m", "fast", "-w", "stop"])
    }

    /// Stops the server if it runs and deletes its files.
    public func destroy() async {
        _ = try? await run("pg_ctl", ["-D", data.path, "-m", "immediate", "-w", "stop"], check: false)
        unregisterForExit(self)
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `psql -c` as the superuser (for setup that is not the code under test).
    public func psql(_ sql: String) async throws {
        try await run("psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql])
    }

    private func run(_ tool: String, _ arguments: [String], check: Bool = true) async throws {
        try await runCommand(Self.asPostgres([tool] + arguments), log: log, check: check)
    }

    /// The command line of a PostgreSQL tool, through `runuser -u postgres` when running as root.
    static func asPostgres(_ command: [String]) -> [String] {
        let tool = binaries.appendingPathComponent(command[0]).path
        let line = [tool] + command.dropFirst()
        return getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + line : line
    }
}

private let sharedPostgres = Mutex<Task<PostgresServer, any Error>?>(nil)

extension PostgresServer {
    /// One cluster for the whole test process, for tests that never stop it; removed at exit.
    public static func shared() async throws -> PostgresServer {
        try await sharedPostgres.withLock { task in
            if let task { return task }
            let launching = Task { try await launch() }
            task = launching
            return launching
        }.value
    }
}
