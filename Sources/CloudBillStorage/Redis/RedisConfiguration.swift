/// How a ``Cache`` reaches Redis.
public struct RedisConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Connections, and threads to drive them: at most this many commands are in flight.
    public var connections: Int
    public var connectTimeout: Duration
    /// How long a command may wait for its reply before it counts as a timeout.
    public var commandTimeout: Duration
    /// After a failed connect, how long a connection answers "unavailable" at once
    /// instead of trying again, so an outage costs callers nothing.
    public var reconnectDelay: Duration

    public init(
        host: String = "127.0.0.1",
        port: Int = 6379,
        connections: Int = 4,
        connectTimeout: Duration = .milliseconds(250),
        commandTimeout: Duration = .milliseconds(250),
        reconnectDelay: Duration = .milliseconds(250)
    ) {
        precondition(connections > 0, "a cache needs at least one connection")
        self.host = host
        self.port = port
        self.connections = connections
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.reconnectDelay = reconnectDelay
    }
}
