import CLibPQ
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Rows and affected-row count of one statement.
struct QueryResult: Sendable {
    var rows: [PostgresRow]
    var affectedRows: Int
    /// The command tag's verb: `SELECT`, `INSERT`, `COMMIT`, or `ROLLBACK` for a COMMIT
    /// that found its transaction aborted.
    var command: String
}

/// One libpq connection. Every call blocks, so it runs on the pool's thread pool; the
/// mutex is held for the whole call, which keeps one statement in flight per connection.
final class PostgresConnection: Sendable {
    private struct Session {
        var handle: OpaquePointer?
        /// The session's current `statement_timeout`, to change it only when a query asks for another.
        var statementTimeoutMilliseconds: Int64
        /// Statements prepared on this session, by their text: each is parsed and planned by
        /// the server once per connection, then only bound and executed. The services run a
        /// fixed set of statements, so the map stays small; past ``preparedLimit`` statements
        /// run unnamed, as they would without the cache.
        var prepared: [String: String] = [:]
        /// Names are never reused, so a statement dropped from the map cannot be confused
        /// with a later one.
        var statementsPrepared = 0
    }

    static let preparedLimit = 256

    private let session: Mutex<Session>
    private let logger: Logger

    private init(handle: sending OpaquePointer, statementTimeoutMilliseconds: Int64, logger: Logger) {
        session = Mutex(Session(handle: handle, statementTimeoutMilliseconds: statementTimeoutMilliseconds))
        self.logger = logger
    }

    /// Opens a connection (blocking) with the session settings CloudBill relies on.
    static func connect(_ configuration: PostgresConfiguration, logger: Logger) throws(DatabaseError) -> PostgresConnection {
        let timeout = configuration.statementTimeout.roundedUpMilliseconds
        let settings: [(String, String)] = [
            // expand_dbname: the first "dbname" is parsed as a whole connection string;
            // later keywords override what it says.
            ("dbname", configuration.connectionString),
            ("connect_timeout", String(max(2, configuration.connectTimeout.components.seconds))),
            ("application_name", configuration.applicationName),
            ("client_encoding", "UTF8"),
            // Prepared statements are planned for their parameters each time, as unnamed ones
            // were: a generic plan could not use an index for `($2 IS NULL OR status = $2)`.
            ("options", "-c statement_timeout=\(timeout) -c TimeZone=UTC -c DateStyle=ISO -c plan_cache_mode=force_custom_plan"),
            // A peer that vanishes (a partition, a frozen host) is noticed in seconds: idle
            // connections by keepalive probes, busy ones when sent data stays unacknowledged.
            ("keepalives", "1"),
            ("keepalives_idle", "5"),
            ("keepalives_interval", "2"),
            ("keepalives_count", "3"),
            ("tcp_user_timeout", String(configuration.tcpUserTimeout.roundedUpMilliseconds)),
        ]
        let handle = connectdb(settings)
        guard let handle else { throw .connectionUnavailable }  // out of memory
        guard PQstatus(handle) == CONNECTION_OK else {
            logger.warning("PostgreSQL connection failed", metadata: ["reason": "\(Self.text(PQerrorMessage(handle)))"])
            PQfinish(handle)
            throw .connectionUnavailable
        }
        return PostgresConnection(handle: handle, statementTimeoutMilliseconds: timeout, logger: logger)
    }

    /// `PQconnectdbParams` with `expand_dbname`; taking only Swift strings, it hands back a
    /// `PGconn` that shares nothing with its caller.
    private static func connectdb(_ settings: [(String, String)]) -> OpaquePointer? {
        let keywords = settings.map { strdup($0.0) }
        let values = settings.map { strdup($0.1) }
        defer { (keywords + values).forEach { free($0) } }
        return (keywords.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { keywordPointers in
            (values.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { valuePointers in
                PQconnectdbParams(keywordPointers.baseAddress, valuePointers.baseAddress, 1)
            }
        }
    }

    /// Runs one parameterised statement (blocking).
    /// - Parameters:
    ///   - statementTimeout: milliseconds; nil leaves the session's setting alone.
    ///   - sleepingFirst: milliseconds PostgreSQL sleeps (`pg_sleep`) before the statement, in
    ///     this session and under the same timeout: the injected fault `db_slow`.
    ///   - sleepTimeout: milliseconds; outside a transaction the sleep runs under this
    ///     `statement_timeout` instead of the statement's (inside one, under the statement's: a
    ///     plain `SET` there would outlive or undo the transaction's own). A sleep past it is
    ///     cancelled by PostgreSQL (57014) and the statement fails as timed out without running.
    func execute(
        _ sql: String, _ parameters: [String?], statementTimeout: Int64?,
        sleepingFirst sleep: Int? = nil, sleepTimeout: Int64? = nil
    ) throws(DatabaseError) -> QueryResult {
        // Text-format parameters travel NUL-terminated: refuse rather than truncate.
        // 22021 is what PostgreSQL itself answers for a NUL in text.
        if parameters.contains(where: { $0?.utf8.contains(0) == true }) {
            throw .queryFailed(sqlState: "22021")
        }
        return try session.withLock { (session) throws(DatabaseError) -> QueryResult in
            guard let handle = session.handle else { throw .connectionUnavailable }
            func limit(to milliseconds: Int64) throws(DatabaseError) {
                guard milliseconds != session.statementTimeoutMilliseconds else { return }
                _ = try Self.check(PQexec(handle, "SET statement_timeout = \(milliseconds)"), handle, logger)
                session.statementTimeoutMilliseconds = milliseconds
            }
            let statementLimit = statementTimeout ?? session.statementTimeoutMilliseconds
            if let sleep {
                let isIdle = PQtransactionStatus(handle) == PQTRANS_IDLE
                try limit(to: isIdle ? sleepTimeout ?? statementLimit : statementLimit)
                do throws(DatabaseError) {
                    _ = try Self.check(PQexec(handle, "SELECT pg_sleep(\(sleep) / 1000.0) /* cloudbill fault: db_slow */"), handle, logger)
                } catch {
                    // Cancelled at the fault's timeout: the session keeps the statement's for
                    // the next caller (outside a transaction a SET is durable and may run).
                    if isIdle { try? limit(to: statementLimit) }
                    throw error
                }
            }
            try limit(to: statementLimit)
            var statement = session.prepared[sql]
            if statement == nil, session.prepared.count < Self.preparedLimit {
                let name = "cloudbill_\(session.statementsPrepared)"
                // A statement that fails to prepare (a syntax error, an aborted transaction)
                // fails here as it would have run, and is not remembered.
                _ = try Self.check(PQprepare(handle, name, sql, Int32(parameters.count), nil), handle, logger)
                session.statementsPrepared += 1
                session.prepared[sql] = name
                statement = name
            }
            let copies = parameters.map { $0.flatMap { strdup($0) } }
            defer { copies.forEach { free($0) } }
            func run(_ statement: String?) -> OpaquePointer? {
                copies.map { $0.map { UnsafePointer($0) } }.withUnsafeBufferPointer { values in
                    if let statement {
                        PQexecPrepared(handle, statement, Int32(values.count), values.baseAddress, nil, nil, 0)
                    } else {
                        PQexecParams(handle, sql, Int32(values.count), nil, values.baseAddress, nil, nil, 0)
                    }
                }
            }
            var result = run(statement)
            if let name = statement, let result0 = result, Self.isStalePreparedStatement(result0) {
                // The schema changed under a prepared statement (0A000: its result type
                // changed) or the server lost it (26000): forget it, and unless a transaction
                // holds the failure, run the statement unnamed once more.
                session.prepared.removeValue(forKey: sql)
                let inTransaction = PQtransactionStatus(handle) != PQTRANS_IDLE
                if !inTransaction {
                    PQclear(result0)
                    PQclear(PQexec(handle, "DEALLOCATE \(name)"))
                    result = run(nil)
                }
            }
            return try Self.check(result, handle, logger)
        }
    }

    /// Runs a script of several statements without parameters (blocking): migrations and
    /// transaction control only, never text that came from a request.
    func executeScript(_ sql: String) throws(DatabaseError) -> QueryResult {
        try session.withLock { (session) throws(DatabaseError) -> QueryResult in
            guard let handle = session.handle else { throw .connectionUnavailable }
            return try Self.check(PQexec(handle, sql), handle, logger)
        }
    }

    /// Whether a transaction is open on this connection, failed or not.
    var isInTransaction: Bool {
        session.withLock { session in
            guard let handle = session.handle, PQstatus(handle) == CONNECTION_OK else { return false }
            let status = PQtransactionStatus(handle)
            return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
        }
    }

    /// Whether the connection can go back to the pool: open, and outside any transaction.
    var isReusable: Bool {
        session.withLock { session in
            guard let handle = session.handle else { return false }
            return PQstatus(handle) == CONNECTION_OK && PQtransactionStatus(handle) == PQTRANS_IDLE
        }
    }

    /// Whether the server has closed this idle connection (a restart, an administrator's
    /// `pg_terminate_backend`). Does not block: an idle connection has nothing to read, so
    /// anything readable (the FATAL report, then EOF) means it is gone.
    var isClosedByServer: Bool {
        session.withLock { session in
            guard let handle = session.handle, PQstatus(handle) == CONNECTION_OK else { return true }
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            return poll(&descriptor, 1, 0) != 0
        }
    }

    func close() {
        session.withLock { session in
            if let handle = session.handle { PQfinish(handle) }
            session.handle = nil
        }
    }

    deinit {
        session.withLock { session in
            if let handle = session.handle { PQfinish(handle) }
        }
    }

    /// Whether a failed result says the named statement it ran is no longer usable.
    private static func isStalePreparedStatement(_ result: OpaquePointer) -> Bool {
        guard PQresultStatus(result) == PGRES_FATAL_ERROR,
              let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))) else { return false }
        let code = String(cString: state)
        return code == "0A000" || code == "26000"
    }

    /// Turns a `PGresult` into rows or a classified error, and frees it.
    private static func check(_ result: OpaquePointer?, _ handle: OpaquePointer, _ logger: Logger) throws(DatabaseError) -> QueryResult {
        guard let result else {
            logger.warning("PostgreSQL call failed", metadata: ["reason": "\(text(PQerrorMessage(handle)))"])
            throw .connectionUnavailable
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return QueryResult(
                rows: rows(of: result),
                affectedRows: Int(text(PQcmdTuples(result))) ?? 0,
                command: String(text(PQcmdStatus(result)).prefix { $0 != " " })
            )
        default:
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let constraint = PQresultErrorField(result, Int32(UInt8(ascii: "n"))).map { String(cString: $0) }
            let error: DatabaseError =
                if let sqlState, PQstatus(handle) == CONNECTION_OK { DatabaseError(sqlState: sqlState, constraint: constraint) }
                else { .connectionUnavailable }
            logger.debug("PostgreSQL statement failed", metadata: [
                "sqlstate": "\(sqlState ?? "none")", "reason": "\(text(PQresultErrorMessage(result)))",
            ])
            throw error
        }
    }

    private static func rows(of result: OpaquePointer) -> [PostgresRow] {
        let rowCount = PQntuples(result), columnCount = PQnfields(result)
        guard rowCount > 0 else { return [] }
        let columns = (0..<columnCount).map { text(PQfname(result, $0)) }
        return (0..<rowCount).map { row in
            PostgresRow(columns: columns, values: (0..<columnCount).map { column in
                guard PQgetisnull(result, row, column) == 0 else { return nil }
                let bytes = UnsafeRawBufferPointer(start: PQgetvalue(result, row, column), count: Int(PQgetlength(result, row, column)))
                return String(decoding: bytes, as: UTF8.self)
            })
        }
    }

    private static func text(_ pointer: UnsafePointer<CChar>?) -> String {
        pointer.map { String(cString: $0) }?.trimmingSuffix(while: \.isNewline) ?? ""
    }
}

extension String {
    fileprivate func trimmingSuffix(while predicate: (Character) -> Bool) -> String {
        var text = self
        while let last = text.last, predicate(last) { text.removeLast() }
        return text
    }
}
