/// How a ``Cache`` reaches Redis.
public struct RedisConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// The ACL user of `AUTH`; nil with a password alone (`requirepass`).
    public var user: String?
    /// The password of `AUTH`; nil when Redis needs none.
    public var password: String?
    /// The prefix of every key this cache writes; ``Cache/removeKeys(matching:)`` stays inside it.
    public var keyNamespace: String
    /// Connections, and threads to drive them: at most this many commands are in flight.
    public var connections: Int
    /// Commands that may wait for a free connection; one more fails at once.
    public var maximumQueued: Int
    public var connectTimeout: Duration
    /// How long a command may wait for its reply before it counts as a timeout; a command
    /// that waited this long for a connection fails without being sent.
    public var commandTimeout: Duration
    /// After a failed connect, how long a connection answers "unavailable" at once
    /// instead of trying again, so an outage costs callers nothing.
    public var reconnectDelay: Duration
    /// Consecutive timeouts or connection failures that open the circuit breaker.
    public var breakerThreshold: Int
    /// How long the open breaker fails commands at once before letting one through to probe.
    public var breakerCooldown: Duration

    public init(
        host: String = "127.0.0.1",
        port: Int = 6379,
        user: String? = nil,
        password: String? = nil,
        keyNamespace: String = "",
        connections: Int = 4,
        maximumQueued: Int = 256,
        connectTimeout: Duration = .milliseconds(250),
        commandTimeout: Duration = .milliseconds(250),
        reconnectDelay: Duration = .milliseconds(250),
        breakerThreshold: Int = 4,
        breakerCooldown: Duration = .seconds(1)
    ) {
        precondition(connections > 0, "a cache needs at least one connection")
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.keyNamespace = keyNamespace
        self.connections = connections
        self.maximumQueued = maximumQueued
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.reconnectDelay = reconnectDelay
        self.breakerThreshold = breakerThreshold
        self.breakerCooldown = breakerCooldown
    }
}
