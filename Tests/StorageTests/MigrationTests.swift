import CloudBillStorage
import CloudBillTestSupport
import Foundation
import Testing

@Suite struct MigrationTests {
    /// A fresh database on the shared server and a connection string for it.
    static func freshDatabase() async throws -> String {
        let server = try await PostgresServer.shared()
        let name = uniqueName("migrations")
        let admin = PoolFixture(server, size: 1)
        try await admin.pool.execute("ddl", tenant: nil, "CREATE DATABASE \(name)")
        await admin.pool.close()
        return server.connectionString + " dbname=\(name)"
    }

    static func folder(_ files: [String: String]) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(uniqueName("migrations"))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (name, sql) in files { try sql.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        return folder
    }

    static let accounts = [
        "0001_accounts.sql": "CREATE TABLE accounts (id uuid PRIMARY KEY);\nSELECT pg_sleep(0.3);",
        "0002_account_names.sql": "ALTER TABLE accounts ADD COLUMN name text NOT NULL DEFAULT '';",
        "README.md": "not a migration",
    ]

    @Test func migrationsLoadInVersionOrderAndIgnoreOtherFiles() throws {
        let migrations = try Migration.load(from: Self.folder(Self.accounts))
        #expect(migrations.map(\.version) == [1, 2])
        #expect(migrations.map(\.name) == ["accounts", "account_names"])
        #expect(throws: Migration.LoadingError.duplicateVersion(1)) {
            try Migration.load(from: Self.folder(["0001_a.sql": "", "001_b.sql": ""]))
        }
    }

    @Test func bundledMigrationsApply() async throws {
        let bundled = try Migration.bundled()
        #expect(bundled.first?.version == 1)
        let fixture = PoolFixture(try await Self.freshDatabase(), size: 1)
        #expect(try await fixture.pool.migrate(bundled) == bundled.map(\.version))
        await fixture.pool.close()
    }

    @Test func migratingTwiceAppliesEachVersionOnce() async throws {
        let migrations = try Migration.load(from: Self.folder(Self.accounts))
        let fixture = PoolFixture(try await Self.freshDatabase(), size: 1)
        #expect(try await fixture.pool.migrate(migrations) == [1, 2])
        #expect(try await fixture.pool.migrate(migrations) == [])
        let recorded = try await fixture.pool.query("select", tenant: nil, "SELECT version, name FROM schema_migrations ORDER BY version")
        #expect(try recorded.map { try $0.decode(Int64.self, at: 0) } == [1, 2])
        #expect(try await fixture.pool.execute("insert", tenant: nil, "INSERT INTO accounts (id, name) VALUES ($1, $2)", [UUID(), "a"]) == 1)
        await fixture.pool.close()
    }

    @Test func poolsMigratingConcurrentlyApplyEachVersionOnce() async throws {
        let migrations = try Migration.load(from: Self.folder(Self.accounts))
        let database = try await Self.freshDatabase()
        let first = PoolFixture(database, size: 1), second = PoolFixture(database, size: 1)
        async let appliedByFirst = first.pool.migrate(migrations)
        async let appliedBySecond = second.pool.migrate(migrations)
        let applied = try await [appliedByFirst, appliedBySecond]
        #expect(applied.contains([1, 2]))
        #expect(applied.contains([]))
        let recorded = try await first.pool.query("select", tenant: nil, "SELECT count(*) FROM schema_migrations")
        #expect(try recorded[0].decode(Int.self, at: 0) == 2)
        await first.pool.close()
        await second.pool.close()
    }

    @Test func failingMigrationLeavesTheSchemaUntouched() async throws {
        let migrations = try Migration.load(from: Self.folder([
            "0001_accounts.sql": "CREATE TABLE accounts (id uuid PRIMARY KEY);",
            "0002_broken.sql": "ALTER TABLE nowhere ADD COLUMN x int;",
        ]))
        let fixture = PoolFixture(try await Self.freshDatabase(), size: 1)
        await #expect(throws: DatabaseError.queryFailed(sqlState: "42P01")) { try await fixture.pool.migrate(migrations) }
        let tables = try await fixture.pool.query(
            "select", tenant: nil, "SELECT count(*) FROM pg_tables WHERE tablename IN ('accounts', 'schema_migrations')"
        )
        #expect(try tables[0].decode(Int.self, at: 0) == 0)
        await fixture.pool.close()
    }
}
