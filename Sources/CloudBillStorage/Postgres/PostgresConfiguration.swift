/// How a ``ConnectionPool`` reaches PostgreSQL and how much it may use.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection string, keyword form (`host=... port=... dbname=...`) or URI.
    public var connectionString: String
    /// The most connections the pool opens; callers beyond it queue.
    public var maximumConnections: Int
    /// How long a caller waits in the queue before ``DatabaseError/acquireTimedOut``.
    public var acquireTimeout: Duration
    /// The session's `statement_timeout`; a query can ask for another.
    public var statementTimeout: Duration
    /// libpq's `connect_timeout` (whole seconds, at least 2 as libpq requires).
    public var connectTimeout: Duration
    /// Reported to PostgreSQL as `application_name`.
    public var applicationName: String
    /// libpq's `tcp_user_timeout`: how long sent data may stay unacknowledged before the
    /// connection counts as broken (TCP connections only).
    public var tcpUserTimeout: Duration

    public init(
        connectionString: String,
        maximumConnections: Int = 10,
        acquireTimeout: Duration = .seconds(2),
        statementTimeout: Duration = .seconds(5),
        connectTimeout: Duration = .seconds(2),
        applicationName: String = "cloudbill",
        tcpUserTimeout: Duration = .seconds(5)
    ) {
        precondition(maximumConnections > 0, "a pool needs at least one connection")
        self.connectionString = connectionString
        self.maximumConnections = maximumConnections
        self.acquireTimeout = acquireTimeout
        self.statementTimeout = statementTimeout
        self.connectTimeout = connectTimeout
        self.applicationName = applicationName
        self.tcpUserTimeout = tcpUserTimeout
    }
}

extension Duration {
    /// Whole milliseconds, rounded up so that a positive duration never becomes 0 (which
    /// PostgreSQL reads as "no timeout").
    var roundedUpMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    }
}
