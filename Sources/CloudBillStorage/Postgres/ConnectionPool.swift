import CloudBillInstrumentation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A bounded pool of PostgreSQL connections that runs every statement on its own threads
/// and records `db_*` metrics.
///
/// Callers beyond ``PostgresConfiguration/maximumConnections`` queue in arrival order for at
/// most ``PostgresConfiguration/acquireTimeout``. libpq blocks, so statements run on a
/// dedicated `NIOThreadPool` with one thread per connection: never on Swift's cooperative
/// pool or an event loop. A connection the server closed is discarded and replaced, so the
/// pool recovers from a PostgreSQL restart by itself. As a `Service`, it closes on shutdown.
public final class ConnectionPool: Service, Sendable {
    public let configuration: PostgresConfiguration
    let metrics: DatabaseMetrics
    let logger: Logger
    private let threadPool: NIOThreadPool
    private let state: Mutex<State>
    private let defaultTimeoutMilliseconds: Int64
    /// An injected slowdown (fault `db_slow`), nil when none.
    private let queryDelay = Mutex<QueryDelay?>(nil)

    public init(configuration: PostgresConfiguration, metrics: DatabaseMetrics, logger: Logger = Logger(label: "cloudbill.postgres")) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        threadPool = NIOThreadPool(numberOfThreads: configuration.maximumConnections)
        threadPool.start()
        state = Mutex(State(maximum: configuration.maximumConnections))
        defaultTimeoutMilliseconds = configuration.statementTimeout.roundedUpMilliseconds
        metrics.pool?.set(capacity: configuration.maximumConnections, active: 0, idle: 0, waiting: 0)
    }

    /// Waits for graceful shutdown, then closes the pool.
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }

    /// Closes idle connections, fails queued callers with ``DatabaseError/poolClosed`` and
    /// stops the threads once running statements finish; lent connections close on return.
    public func close() async {
        let (idle, waiters) = state.withLock { state in
            state.isClosed = true
            defer { state.idle = []; state.waiters = []; state.publish(to: metrics.pool) }
            return (state.idle, Array(state.waiters))
        }
        idle.forEach { $0.close() }
        waiters.forEach { $0.continuation.resume(throwing: DatabaseError.poolClosed) }
        try? await threadPool.shutdownGracefully()
    }

    // MARK: Statements

    /// Runs one parameterised statement and returns its rows.
    ///
    /// - Parameters:
    ///   - operation: the bounded `operation` label of `db_query_duration_seconds`
    ///     (`select`, `insert_invoice`, ...); never built from request data.
    ///   - tenant: the `tenant_id` label; nil counts as `anonymous`.
    ///   - sql: the statement, with `$1`, `$2`, ... where parameters go.
    ///   - timeout: this statement's `statement_timeout`, instead of the configured one.
    /// - Throws: ``DatabaseError``; ``ColumnDecodingError`` comes later, from the rows.
    public func query(
        _ operation: String,
        tenant: String?,
        _ sql: String,
        _ parameters: [(any PostgresEncodable)?] = [],
        timeout: Duration? = nil
    ) async throws -> [PostgresRow] {
        try await run(operation, tenant: tenant, sql, parameters, timeout: timeout).rows
    }

    /// Runs one parameterised statement and returns how many rows it inserted, updated or deleted.
    @discardableResult
    public func execute(
        _ operation: String,
        tenant: String?,
        _ sql: String,
        _ parameters: [(any PostgresEncodable)?] = [],
        timeout: Duration? = nil
    ) async throws -> Int {
        try await run(operation, tenant: tenant, sql, parameters, timeout: timeout).affectedRows
    }

    /// Runs `body` in a transaction on one connection: committed when `body` returns,
    /// rolled back when it throws.
    ///
    /// `BEGIN`, `COMMIT` and `ROLLBACK` are recorded as operations `begin`, `commit` and
    /// `rollback`. A transaction that a failed statement aborted cannot commit: if `body`
    /// swallowed that statement's error, the commit throws `queryFailed(sqlState: "25P02")`.
    /// - Parameter timeout: `statement_timeout` for each statement of the transaction.
    public func withTransaction<Result>(
        tenant: String?,
        timeout: Duration? = nil,
        _ body: (PostgresTransaction) async throws -> Result
    ) async throws -> Result {
        let tenant = tenant ?? "anonymous"
        let connection = try await lease(tenant: tenant)
        do {
            let milliseconds = timeout?.roundedUpMilliseconds ?? defaultTimeoutMilliseconds
            _ = try await perform(on: connection, "begin", tenant: tenant, script: "BEGIN; SET LOCAL statement_timeout = \(milliseconds)")
            let result = try await body(PostgresTransaction(pool: self, connection: connection, tenant: tenant))
            let commit = try await perform(on: connection, "commit", tenant: tenant, script: "COMMIT")
            if commit.command == "ROLLBACK" {
                metrics.countError(.query, tenant: tenant)
                throw DatabaseError.queryFailed(sqlState: "25P02")
            }
            release(connection)
            return result
        } catch {
            if connection.isInTransaction {
                _ = try? await perform(on: connection, "rollback", tenant: tenant, script: "ROLLBACK")
            }
            release(connection)
            throw error
        }
    }

    private func run(
        _ operation: String, tenant: String?, _ sql: String, _ parameters: [(any PostgresEncodable)?], timeout: Duration?
    ) async throws -> QueryResult {
        let tenant = tenant ?? "anonymous"
        let connection = try await lease(tenant: tenant)
        defer { release(connection) }
        return try await perform(
            on: connection, operation, tenant: tenant, sql, parameters,
            timeoutMilliseconds: timeout?.roundedUpMilliseconds ?? defaultTimeoutMilliseconds
        )
    }

    /// Runs a parameterised statement on a leased connection; records its duration and
    /// counts its failure.
    func perform(
        on connection: PostgresConnection, _ operation: String, tenant: String,
        _ sql: String, _ parameters: [(any PostgresEncodable)?], timeoutMilliseconds: Int64?
    ) async throws -> QueryResult {
        let texts = parameters.map { $0?.postgresText }
        let delay = queryDelay.withLock { $0 }.flatMap { $0.rate > Double.random(in: 0..<1) ? $0 : nil }
        return try await measure(operation, tenant: tenant) { () throws(DatabaseError) in
            try connection.execute(
                sql, texts, statementTimeout: timeoutMilliseconds,
                sleepingFirst: delay?.milliseconds, sleepTimeout: delay?.timeoutMilliseconds.map(Int64.init)
            )
        }
    }

    /// Runs a parameterless script (transaction control, migrations) on a leased connection.
    func perform(on connection: PostgresConnection, _ operation: String, tenant: String, script: String) async throws -> QueryResult {
        try await measure(operation, tenant: tenant) { () throws(DatabaseError) in try connection.executeScript(script) }
    }

    private func measure(
        _ operation: String, tenant: String, _ call: @escaping @Sendable () throws(DatabaseError) -> QueryResult
    ) async throws(DatabaseError) -> QueryResult {
        let start = ContinuousClock.now
        defer { metrics.recordQuery(operation: operation, tenant: tenant, seconds: (ContinuousClock.now - start).seconds) }
        do {
            return try await threadPool.runIfActive { try call() }
        } catch {
            let failure = error as? DatabaseError ?? .poolClosed  // runIfActive: the thread pool has stopped
            metrics.countError(failure.errorType, tenant: tenant)
            throw failure
        }
    }

    // MARK: Injected faults

    /// A slowdown PostgreSQL itself performs: `SELECT pg_sleep` before a share of statements.
    public struct QueryDelay: Sendable, Equatable {
        public var milliseconds: Int
        /// The share of statements delayed, in [0, 1].
        public var rate: Double
        /// The `statement_timeout` the sleep runs under, in milliseconds; nil: the statement's.
        public var timeoutMilliseconds: Int?

        public init(milliseconds: Int, rate: Double, timeoutMilliseconds: Int? = nil) {
            self.milliseconds = milliseconds
            self.rate = rate
            self.timeoutMilliseconds = timeoutMilliseconds
        }
    }

    /// Makes PostgreSQL sleep before a share of the parameterised statements, in the same
    /// session and inside their `statement_timeout` (or the delay's own); nil stops it.
    ///
    /// The sleep holds the connection and counts in the statement's `db_query_duration_seconds`;
    /// it shows in `pg_stat_activity` as `SELECT pg_sleep(...) /* cloudbill fault: db_slow */`.
    public func injectQueryDelay(_ delay: QueryDelay?) {
        queryDelay.withLock { $0 = delay }
    }

    /// Caps the connections the pool may hold below the configured maximum; nil lifts the cap.
    ///
    /// Idle connections above the cap close at once and lent ones close when they come back,
    /// so the pool gauges show the smaller pool; callers beyond it queue as they would at the
    /// configured maximum, and may time out.
    public func limitConnections(to limit: Int?) {
        let (surplus, waiting) = state.withLock { state -> ([PostgresConnection], Int) in
            state.limit = limit.map { min(max(1, $0), state.maximum) }
            var surplus: [PostgresConnection] = []
            while state.isOverCapacity, let connection = state.idle.popLast() { surplus.append(connection) }
            state.publish(to: metrics.pool)
            return (surplus, state.waiters.count)
        }
        surplus.forEach { $0.close() }
        // A raised cap: open for the callers already queued, as far as it allows.
        for _ in 0..<waiting { openForWaiters() }
    }

    // MARK: Leasing

    private enum Decision {
        case connection(PostgresConnection)
        case open
        case wait
        case closed
    }

    /// Lends a live connection, counting a failure under `tenant`; every lease ends in ``release(_:)``.
    func lease(tenant: String) async throws -> PostgresConnection {
        do {
            while true {
                let decision = state.withLock { state -> Decision in
                    if state.isClosed { return .closed }
                    if let connection = state.idle.popLast() {
                        state.leased += 1
                        state.publish(to: metrics.pool)
                        return .connection(connection)
                    }
                    if state.waiters.isEmpty, state.hasCapacity {
                        state.opening += 1
                        return .open
                    }
                    return .wait
                }
                let connection: PostgresConnection
                switch decision {
                case .closed: throw DatabaseError.poolClosed
                case .connection(let idle): connection = idle
                case .open: return try await openLeased()
                case .wait: connection = try await waitForConnection()
                }
                guard connection.isClosedByServer else { return connection }
                logger.info("Discarding a PostgreSQL connection the server closed")
                connection.close()
                release(connection)
            }
        } catch let error as DatabaseError {
            metrics.countError(error.errorType, tenant: tenant)
            throw error
        }
    }

    /// Returns a lent connection: to the first queued caller, to the idle list, or, when it
    /// is broken or mid-transaction, closed and replaced for the queue.
    func release(_ connection: PostgresConnection) {
        let isReusable = connection.isReusable
        let (handOff, isKept) = state.withLock { state -> (Waiter?, Bool) in
            // Over capacity only while a lowered cap (fault `db_pool_limit`) is taking effect.
            let isKept = isReusable && !state.isClosed && !state.isOverCapacity
            if isKept, let waiter = state.waiters.popFirst() {
                state.publish(to: metrics.pool)
                return (waiter, true)
            }
            state.leased -= 1
            if isKept { state.idle.append(connection) }
            state.publish(to: metrics.pool)
            return (nil, isKept)
        }
        if let handOff {
            handOff.continuation.resume(returning: connection)
            return
        }
        if !isKept {
            connection.close()
            openForWaiters()
        }
    }

    /// Opens a connection for a caller that holds an `opening` reservation.
    private func openLeased() async throws -> PostgresConnection {
        do {
            let connection = try await threadPool.runIfActive { [configuration, logger] () throws(DatabaseError) in
                try PostgresConnection.connect(configuration, logger: logger)
            }
            state.withLock { state in
                state.opening -= 1
                state.leased += 1
                state.publish(to: metrics.pool)
            }
            return connection
        } catch {
            state.withLock { $0.opening -= 1 }
            openForWaiters()
            throw error as? DatabaseError ?? .poolClosed
        }
    }

    /// When callers queue and a slot is free (a broken connection was dropped), opens a
    /// connection for the first of them; if PostgreSQL is down, fails them one by one with
    /// ``DatabaseError/connectionUnavailable`` instead of letting them time out.
    private func openForWaiters() {
        let shouldOpen = state.withLock { state in
            guard !state.isClosed, !state.waiters.isEmpty, state.hasCapacity else { return false }
            state.opening += 1
            return true
        }
        guard shouldOpen else { return }
        threadPool.submit { [self] work in
            let opened: Result<PostgresConnection, DatabaseError> =
                work == .active ? Result { () throws(DatabaseError) in try PostgresConnection.connect(configuration, logger: logger) } : .failure(.poolClosed)
            let waiter = state.withLock { state -> Waiter? in
                state.opening -= 1
                let waiter = state.waiters.popFirst()
                if case .success(let connection) = opened {
                    if waiter != nil { state.leased += 1 } else if !state.isClosed { state.idle.append(connection) }
                }
                state.publish(to: metrics.pool)
                return waiter
            }
            switch opened {
            case .success(let connection):
                if let waiter { waiter.continuation.resume(returning: connection) }
                else if state.withLock({ $0.isClosed }) { connection.close() }
            case .failure(let error):
                waiter?.continuation.resume(throwing: error)
                openForWaiters()
            }
        }
    }

    private func waitForConnection() async throws -> PostgresConnection {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let timer = Task { [self, timeout = configuration.acquireTimeout] in
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            removeWaiter(id)?.resume(throwing: DatabaseError.acquireTimedOut)
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PostgresConnection, any Error>) in
                enum Outcome { case queued, connection(PostgresConnection), cancelled, closed }
                let outcome = state.withLock { state -> Outcome in
                    // Cancelled before the handler below could find this waiter in the queue.
                    if Task.isCancelled { return .cancelled }
                    if state.isClosed { return .closed }
                    if state.waiters.isEmpty, let connection = state.idle.popLast() {
                        state.leased += 1
                        state.publish(to: metrics.pool)
                        return .connection(connection)
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    state.publish(to: metrics.pool)
                    return .queued
                }
                switch outcome {
                case .queued: openForWaiters()
                case .connection(let connection): continuation.resume(returning: connection)
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .closed: continuation.resume(throwing: DatabaseError.poolClosed)
                }
            }
        } onCancel: {
            removeWaiter(id)?.resume(throwing: CancellationError())
        }
    }

    private func removeWaiter(_ id: UInt64) -> CheckedContinuation<PostgresConnection, any Error>? {
        state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            let waiter = state.waiters.remove(at: index)
            state.publish(to: metrics.pool)
            return waiter.continuation
        }
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<PostgresConnection, any Error>
    }

    private struct State {
        let maximum: Int
        /// A lower cap set by ``ConnectionPool/limitConnections(to:)``.
        var limit: Int?
        var idle: [PostgresConnection] = []
        /// Connections lent to callers.
        var leased = 0
        /// Connections being opened; they count against the maximum but not in the gauges.
        var opening = 0
        var waiters = CircularBuffer<Waiter>()
        var nextWaiterID: UInt64 = 0
        var isClosed = false

        init(maximum: Int) { self.maximum = maximum }

        var capacity: Int { min(maximum, limit ?? maximum) }
        var hasCapacity: Bool { leased + idle.count + opening < capacity }
        var isOverCapacity: Bool { leased + idle.count + opening > capacity }

        /// Called under the lock after every change, so the gauges never disagree with the state.
        func publish(to gauges: PoolGauges?) {
            gauges?.set(capacity: isClosed ? 0 : capacity, active: leased, idle: idle.count, waiting: waiters.count)
        }
    }
}

/// The statements of one transaction, on the connection ``ConnectionPool/withTransaction(tenant:timeout:_:)`` holds.
public struct PostgresTransaction: Sendable {
    let pool: ConnectionPool
    let connection: PostgresConnection
    let tenant: String

    /// Runs one parameterised statement of the transaction and returns its rows.
    public func query(_ operation: String, _ sql: String, _ parameters: [(any PostgresEncodable)?] = []) async throws -> [PostgresRow] {
        try await pool.perform(on: connection, operation, tenant: tenant, sql, parameters, timeoutMilliseconds: nil).rows
    }

    /// Runs one parameterised statement of the transaction and returns the affected row count.
    @discardableResult
    public func execute(_ operation: String, _ sql: String, _ parameters: [(any PostgresEncodable)?] = []) async throws -> Int {
        try await pool.perform(on: connection, operation, tenant: tenant, sql, parameters, timeoutMilliseconds: nil).affectedRows
    }

    func executeScript(_ operation: String, _ script: String) async throws {
        _ = try await pool.perform(on: connection, operation, tenant: tenant, script: script)
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
