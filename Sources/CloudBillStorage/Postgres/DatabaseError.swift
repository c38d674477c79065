import CloudBillInstrumentation

/// Why a PostgreSQL call failed, in terms a caller can act on; never libpq's text.
///
/// The server's message is logged where the failure happens; callers map these cases to
/// HTTP statuses (`constraintViolated` to 409, the unavailable ones to 503, ...).
public enum DatabaseError: Error, Sendable, Hashable {
    /// PostgreSQL could not be reached, or the connection broke during the call.
    case connectionUnavailable
    /// The statement ran past its statement timeout and the server cancelled it.
    case statementTimedOut
    /// No connection became free within the pool's acquire timeout.
    case acquireTimedOut
    /// An integrity constraint rejected the statement (SQLSTATE class 23).
    case constraintViolated(sqlState: String, constraint: String?)
    /// PostgreSQL rejected the statement for another reason.
    case queryFailed(sqlState: String)
    /// The pool has been closed.
    case poolClosed

    /// The `error_type` this failure counts under in `db_errors_total`.
    public var errorType: DatabaseMetrics.ErrorType {
        switch self {
        case .connectionUnavailable, .poolClosed: .connection
        case .statementTimedOut: .timeout
        case .acquireTimedOut: .poolExhausted
        case .constraintViolated: .constraint
        case .queryFailed: .query
        }
    }

    /// The five-character SQLSTATE the server reported, when it reported one.
    public var sqlState: String? {
        switch self {
        case .constraintViolated(let state, _), .queryFailed(let state): state
        default: nil
        }
    }

    /// Classifies a server-reported SQLSTATE.
    init(sqlState: String, constraint: String?) {
        switch sqlState {
        case "57014": self = .statementTimedOut  // query_canceled: statement_timeout fired
        case _ where sqlState.hasPrefix("08"), "57P01", "57P02", "57P03": self = .connectionUnavailable
        case _ where sqlState.hasPrefix("23"): self = .constraintViolated(sqlState: sqlState, constraint: constraint)
        default: self = .queryFailed(sqlState: sqlState)
        }
    }
}

/// Why a result column could not be read as the requested Swift type.
public enum ColumnDecodingError: Error, Sendable, Hashable {
    case noSuchColumn(String)
    case unexpectedNull(column: String)
    case invalidText(column: String, type: String)
}
