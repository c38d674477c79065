import CloudBillStorage
import CloudBillTestSupport
import Foundation
import Testing

@Suite struct QueryTests {
    static let awkwardTexts: [String] = [
        "'; DROP TABLE notes; --",
        "' OR '1'='1",
        "Robert'); DELETE FROM notes WHERE ('1' = '1",
        "$1 $2 \\x00 \\\\ \" ` ; -- /* */",
        "quote ' double '' backslash \\ dollar $$ tag $body$",
        "🧾💶 👩🏽‍💻 Zürich — naïve — 日本語 — עברית",
        String((1...255).map { Character(Unicode.Scalar(UInt8($0))) }),
        String(repeating: "long value with ünïcödé and 'quotes'. ", count: 30_000),
        "",
    ]

    @Test func awkwardTextRoundTripsAsData() async throws {
        let fixture = PoolFixture(try await PostgresServer.shared())
        let table = uniqueName("notes")
        try await fixture.pool.execute("ddl", tenant: nil, "CREATE TABLE \(table) (id serial PRIMARY KEY, body text NOT NULL)")
        for text in Self.awkwardTexts {
            let echoed = try await fixture.pool.query("select", tenant: "t1", "SELECT $1::text AS body", [text])
            #expect(try echoed[0].decode(String.self, column: "body") == text)
            let inserted = try await fixture.pool.query("insert", tenant: "t1", "INSERT INTO \(table) (body) VALUES ($1) RETURNING id", [text])
            let id = try inserted[0].decode(Int.self, at: 0)
            let stored = try await fixture.pool.query("select", tenant: "t1", "SELECT body FROM \(table) WHERE id = $1", [id])
            #expect(try stored[0].decode(String.self, at: 0) == text)
        }
        let matches = try await fixture.pool.query("select", tenant: "t1", "SELECT count(*) FROM \(table) WHERE body = $1", ["' OR '1'='1"])
        #expect(try matches[0].decode(Int.self, at: 0) == 1)
        let count = try await fixture.pool.query("select", tenant: "t1", "SELECT count(*) FROM \(table)")
        #expect(try count[0].decode(Int.self, at: 0) == Self.awkwardTexts.count)
        try await fixture.pool.execute("ddl", tenant: nil, "DROP TABLE \(table)")
        await fixture.pool.close()
    }

    @Test func aStatementPreparedBeforeASchemaChangeStillRuns() async throws {
        // One connection, so that both reads run on the connection that prepared the first.
        let fixture = PoolFixture(try await PostgresServer.shared(), size: 1)
        let table = uniqueName("prepared")
        try await fixture.pool.execute("ddl", tenant: nil, "CREATE TABLE \(table) (id int PRIMARY KEY, amount int NOT NULL)")
        try await fixture.pool.execute("insert", tenant: nil, "INSERT INTO \(table) VALUES (1, 42)")
        let select = "SELECT amount FROM \(table) WHERE id = $1"
        #expect(try await fixture.pool.query("select", tenant: nil, select, [1])[0].decode(Int.self, at: 0) == 42)
        // The prepared statement's result type changes: PostgreSQL refuses it (0A000) and the
        // connection prepares it anew instead of failing it from now on.
        try await fixture.pool.execute("ddl", tenant: nil, "ALTER TABLE \(table) ALTER COLUMN amount TYPE text")
        for _ in 0..<2 {
            #expect(try await fixture.pool.query("select", tenant: nil, select, [1])[0].decode(String.self, at: 0) == "42")
        }
        try await fixture.pool.execute("ddl", tenant: nil, "DROP TABLE \(table)")
        await fixture.pool.close()
    }

    @Test func textWithNULIsRefusedNotTruncated() async throws {
        let fixture = PoolFixture(try await PostgresServer.shared())
        await #expect(throws: DatabaseError.queryFailed(sqlState: "22021")) {
            try await fixture.pool.query("select", tenant: "t1", "SELECT $1::text", ["before\u{0}after"])
        }
        #expect(fixture.errors("query", tenant: "t1") == 1)
        await fixture.pool.close()
    }

    @Test func byteaRoundTripsEveryByte() async throws {
        let fixture = PoolFixture(try await PostgresServer.shared())
        let bytes = (0..<4096).map { UInt8($0 % 256) }
        let rows = try await fixture.pool.query("select", tenant: nil, "SELECT $1::bytea, length($1::bytea)", [bytes])
        #expect(try rows[0].decode([UInt8].self, at: 0) == bytes)
        #expect(try rows[0].decode(Int.self, at: 1) == 4096)
        await fixture.pool.close()
    }

    @Test func nullDecodesAsNilAndNilBindsAsNull() async throws {
        let fixture = PoolFixture(try await PostgresServer.shared())
        let missing: String? = nil
        let rows = try await fixture.pool.query(
            "select", tenant: nil, "SELECT NULL::text AS note, NULL::int AS amount, $1::text IS NULL AS bound_null, $2::int", [missing, nil]
        )
        let row = try #require(rows.first)
        #expect(row["note"] == nil)
        #expect(try row.decode(String?.self, column: "note") == nil)
        #expect(try row.decode(Int?.self, column: "amount") == nil)
        #expect(try row.decode(Bool.self, column: "bound_null"))
        #expect(throws: ColumnDecodingError.unexpectedNull(column: "note")) { try row.decode(String.self, column: "note") }
        #expect(throws: ColumnDecodingError.noSuchColumn("nope")) { try row.decode(Int.self, column: "nope") }
        await fixture.pool.close()
    }

    @Test func scalarTypesRoundTrip() async throws {
        let fixture = PoolFixture(try await PostgresServer.shared())
        let id = UUID()
        let when = Date(timeIntervalSince1970: 1_714_557_072.345)
        let rows = try await fixture.pool.query(
            "select", tenant: nil,
            "SELECT $1::int8, $2::int4, $3::bool, $4::float8, $5::uuid, $6::numeric, $7::timestamptz, $8::float8, 'x'::text",
            [Int64.max, Int32.min, true, 0.1 + 0.2, id, Decimal(string: "12345678901234567890.0123456789")!, when, Double.infinity]
        )
        let row = try #require(rows.first)
        #expect(try row.decode(Int64.self, at: 0) == .max)
        #expect(try row.decode(Int32.self, at: 1) == .min)
        #expect(try row.decode(Bool.self, at: 2))
        #expect(try row.decode(Double.self, at: 3) == 0.1 + 0.2)
        #expect(try row.decode(UUID.self, at: 4) == id)
        #expect(try row.decode(Decimal.self, at: 5) == Decimal(string: "12345678901234567890.0123456789")!)
        #expect(try abs(row.decode(Date.self, at: 6).timeIntervalSince(when)) < 0.000_001)
        #expect(try row.decode(Double.self, at: 7) == .infinity)
        #expect(throws: ColumnDecodingError.invalidText(column: "text", type: "Int")) { try row.decode(Int.self, at: 8) }
        await fixture.pool.close()
    }

    @Test func constraintViolationIsClassifiedWithItsSQLState() async throws {
        let fixture = PoolFixture(try await PostgresServer.shared())
        let table = uniqueName("customers")
        try await fixture.pool.execute("ddl", tenant: nil, "CREATE TABLE \(table) (email text CONSTRAINT \(table)_email UNIQUE)")
        try await fixture.pool.execute("insert", tenant: "t1", "INSERT INTO \(table) VALUES ($1)", ["a@example.test"])
        await #expect(throws: DatabaseError.constraintViolated(sqlState: "23505", constraint: "\(table)_email")) {
            try await fixture.pool.execute("insert", tenant: "t1", "INSERT INTO \(table) VALUES ($1)", ["a@example.test"])
        }
        #expect(fixture.errors("constraint", tenant: "t1") == 1)
        await #expect(throws: DatabaseError.queryFailed(sqlState: "42P01")) {
            try await fixture.pool.query("select", tenant: "t1", "SELECT * FROM no_such_table")
        }
        #expect(fixture.errors("query", tenant: "t1") == 1)
        #expect(try await fixture.pool.execute("delete", tenant: nil, "DELETE FROM \(table)") == 1)
        try await fixture.pool.execute("ddl", tenant: nil, "DROP TABLE \(table)")
        await fixture.pool.close()
    }

    @Test func statementTimeoutIsClassifiedAndTheConnectionStaysUsable() async throws {
        let fixture = PoolFixture(try await PostgresServer.shared(), size: 1, statementTimeout: .seconds(3))
        let start = ContinuousClock.now
        await #expect(throws: DatabaseError.statementTimedOut) {
            try await fixture.pool.query("sleep", tenant: "t1", "SELECT pg_sleep(5)", timeout: .milliseconds(100))
        }
        // The call's own 100 ms, not the connection's 3 s or the 5 s sleep (a busy machine
        // adds to the 100 ms: 1.05 s seen here).
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(fixture.errors("timeout", tenant: "t1") == 1)
        let setting = try await fixture.pool.query("show", tenant: nil, "SHOW statement_timeout")
        #expect(setting[0][0] == "3s")
        await #expect(throws: DatabaseError.statementTimedOut) {
            try await fixture.pool.query("sleep", tenant: "t1", "SELECT pg_sleep(5)")
        }
        #expect(fixture.gauges.total == 1)
        await fixture.pool.close()
    }

    @Test func transactionCommitsWhenTheBodyReturns() async throws {
        let fixture = PoolFixture(try await PostgresServer.shared())
        let table = uniqueName("ledger")
        try await fixture.pool.execute("ddl", tenant: nil, "CREATE TABLE \(table) (amount int NOT NULL)")
        let total = try await fixture.pool.withTransaction(tenant: "t1") { transaction in
            try await transaction.execute("insert", "INSERT INTO \(table) VALUES ($1), ($2)", [10, 32])
            return try await transaction.query("select", "SELECT sum(amount)::int FROM \(table)")[0].decode(Int.self, at: 0)
        }
        #expect(total == 42)
        #expect(try await fixture.pool.query("select", tenant: nil, "SELECT count(*) FROM \(table)")[0].decode(Int.self, at: 0) == 2)
        #expect(fixture.exposition.value("db_query_duration_seconds_count", ["operation": "commit", "tenant_id": "t1"]) == 1)
        try await fixture.pool.execute("ddl", tenant: nil, "DROP TABLE \(table)")
        await fixture.pool.close()
    }

    struct Refusal: Error {}

    @Test func transactionRollsBackWhenTheBodyThrows() async throws {
        let fixture = PoolFixture(try await PostgresServer.shared(), size: 1)
        let table = uniqueName("ledger")
        try await fixture.pool.execute("ddl", tenant: nil, "CREATE TABLE \(table) (amount int NOT NULL)")
        await #expect(throws: Refusal.self) {
            try await fixture.pool.withTransaction(tenant: "t1") { transaction in
                try await transaction.execute("insert", "INSERT INTO \(table) VALUES ($1)", [10])
                throw Refusal()
            }
        }
        #expect(try await fixture.pool.query("select", tenant: nil, "SELECT count(*) FROM \(table)")[0].decode(Int.self, at: 0) == 0)
        #expect(fixture.exposition.value("db_query_duration_seconds_count", ["operation": "rollback", "tenant_id": "t1"]) == 1)
        #expect(fixture.gauges.idle == 1)
        try await fixture.pool.execute("ddl", tenant: nil, "DROP TABLE \(table)")
        await fixture.pool.close()
    }

    @Test func transactionWhoseStatementFailedCannotCommit() async throws {
        let fixture = PoolFixture(try await PostgresServer.shared(), size: 1)
        await #expect(throws: DatabaseError.queryFailed(sqlState: "25P02")) {
            try await fixture.pool.withTransaction(tenant: "t1") { transaction in
                _ = try? await transaction.query("select", "SELECT 1 / 0")
            }
        }
        #expect(fixture.errors("query", tenant: "t1") == 2)
        #expect(try await fixture.pool.query("select", tenant: nil, "SELECT 1").count == 1)
        await fixture.pool.close()
    }

    @Test func transactionTimeoutAppliesToItsStatements() async throws {
        let fixture = PoolFixture(try await PostgresServer.shared(), size: 1)
        await #expect(throws: DatabaseError.statementTimedOut) {
            try await fixture.pool.withTransaction(tenant: "t1", timeout: .milliseconds(100)) { transaction in
                try await transaction.query("sleep", "SELECT pg_sleep(2)")
            }
        }
        #expect(fixture.errors("timeout", tenant: "t1") == 1)
        #expect(try await fixture.pool.query("show", tenant: nil, "SHOW statement_timeout")[0][0] == "5s")
        await fixture.pool.close()
    }
}
