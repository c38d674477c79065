import Foundation

/// One versioned schema change: a file `NNNN_what_it_does.sql` in a migrations folder.
public struct Migration: Sendable, Hashable {
    public let version: Int64
    public let name: String
    public let sql: String

    public init(version: Int64, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// Why a migrations folder could not be read.
    public enum LoadingError: Error, Hashable {
        case folderNotFound(String)
        case duplicateVersion(Int64)
    }

    /// The migrations shipped in this module's `Migrations` folder.
    public static func bundled() throws -> [Migration] {
        guard let folder = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw LoadingError.folderNotFound("Migrations")
        }
        return try load(from: folder)
    }

    /// Reads the `NNNN_name.sql` files of `folder`, in version order; other files are ignored.
    public static func load(from folder: URL) throws -> [Migration] {
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        } catch {
            throw LoadingError.folderNotFound(folder.path)
        }
        var migrations: [Migration] = []
        for file in files where file.hasSuffix(".sql") {
            let stem = file.dropLast(4)
            guard let underscore = stem.firstIndex(of: "_"), let version = Int64(stem[..<underscore]) else { continue }
            let sql = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            migrations.append(Migration(version: version, name: String(stem[stem.index(after: underscore)...]), sql: sql))
        }
        migrations.sort { $0.version < $1.version }
        for (previous, next) in zip(migrations, migrations.dropFirst()) where previous.version == next.version {
            throw LoadingError.duplicateVersion(next.version)
        }
        return migrations
    }
}

extension ConnectionPool {
    /// The `pg_advisory_xact_lock` key that serialises migration runs across processes.
    static let migrationLockKey: Int64 = 0x436C_6F75_6442_696C  // "CloudBil"

    /// Applies the migrations not yet recorded in `schema_migrations`, in version order, in one
    /// transaction under an advisory lock: services starting together apply each version once,
    /// and a failing migration leaves the schema as it was.
    /// - Returns: the versions this call applied.
    @discardableResult
    public func migrate(_ migrations: [Migration], timeout: Duration = .seconds(300)) async throws -> [Int64] {
        try await withTransaction(tenant: nil, timeout: timeout) { transaction in
            try await transaction.execute("migrate", "SELECT pg_advisory_xact_lock($1)", [Self.migrationLockKey])
            try await transaction.executeScript("migrate", """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version bigint PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            let applied = try Set(
                await transaction.query("migrate", "SELECT version FROM schema_migrations").map { try $0.decode(Int64.self, at: 0) }
            )
            var newlyApplied: [Int64] = []
            for migration in migrations where !applied.contains(migration.version) {
                logger.info("Applying migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                try await transaction.executeScript("migrate", migration.sql)
                try await transaction.execute(
                    "migrate", "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [migration.version, migration.name]
                )
                newlyApplied.append(migration.version)
            }
            return newlyApplied
        }
    }
}
