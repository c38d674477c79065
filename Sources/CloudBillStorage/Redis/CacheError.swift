import CloudBillInstrumentation

/// Why a Redis command failed; never hiredis's text.
public enum CacheError: Error, Sendable, Hashable {
    /// Redis could not be reached, or the connection broke.
    case unavailable
    /// No reply within the command timeout (or no connection within the connect timeout).
    case timedOut
    /// Redis answered something the client could not parse.
    case protocolViolation
    /// Redis answered the command with an error reply.
    case commandRejected
    /// The cache has been closed.
    case closed
    /// Not sent: the circuit breaker is open after consecutive failures, or the queue of
    /// commands waiting for a connection is full.
    case shedding
    /// Redis refused the credentials (`AUTH`).
    case authenticationFailed

    /// The `error_type` this failure counts under in `redis_errors_total`.
    public var errorType: CacheMetrics.ErrorType {
        switch self {
        case .unavailable, .closed, .shedding, .authenticationFailed: .connection
        case .timedOut: .timeout
        case .protocolViolation: .protocol
        case .commandRejected: .command
        }
    }
}
