import CHiredis
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A reply, copied out of hiredis's memory.
enum RedisReply: Sendable, Hashable {
    case bulk([UInt8])
    case integer(Int)
    case status(String)
    case null
    case error
    indirect case array([RedisReply])
}

/// One hiredis connection, reconnected on the next command after it breaks. Calls block, so
/// they run on the cache's thread pool; the mutex keeps one exchange in flight.
final class RedisConnection: Sendable {
    private struct Link {
        var context: UnsafeMutablePointer<redisContext>?
        var retryAfter: ContinuousClock.Instant?
    }

    private let link = Mutex(Link())
    private let configuration: RedisConfiguration
    private let logger: Logger

    init(configuration: RedisConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Writes the commands in one go and reads one reply per command (blocking).
    ///
    /// A connection that sat idle while Redis restarted is closed at the other end: its
    /// first exchange afterwards fails at once. That failure says nothing about Redis now,
    /// so the exchange is tried once more on a new connection; only a second failure (or a
    /// timeout, after which the command may have run) is the caller's error. Without this,
    /// every idle connection of the pool would report one connection error whenever it
    /// was next used, minutes after Redis came back.
    func pipeline(_ commands: [[[UInt8]]]) throws(CacheError) -> [RedisReply] {
        try link.withLock { (link) throws(CacheError) -> [RedisReply] in
            let reused = link.context != nil
            do throws(CacheError) {
                return try exchange(commands, &link)
            } catch {
                guard error == .unavailable, reused else { throw error }
                return try exchange(commands, &link)
            }
        }
    }

    private func exchange(_ commands: [[[UInt8]]], _ link: inout Link) throws(CacheError) -> [RedisReply] {
        let context = try connectedContext(&link)
        for command in commands {
            let appended = Self.withArgv(command) { argc, argv, lengths in
                redisAppendCommandArgv(context, argc, argv, lengths)
            }
            guard appended == REDIS_OK else { throw fail(&link) }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw fail(&link) }
            defer { freeReplyObject(raw) }
            replies.append(Self.copy(raw.assumingMemoryBound(to: redisReply.self)))
        }
        return replies
    }

    func close() {
        link.withLock { link in
            if let context = link.context { redisFree(context) }
            link.context = nil
        }
    }

    deinit { close() }

    private func connectedContext(_ link: inout Link) throws(CacheError) -> UnsafeMutablePointer<redisContext> {
        if let context = link.context { return context }
        if let retryAfter = link.retryAfter, ContinuousClock.now < retryAfter { throw .unavailable }
        guard let context = redisConnectWithTimeout(configuration.host, Int32(configuration.port), configuration.connectTimeout.timevalValue) else {
            throw .unavailable
        }
        link.context = context
        guard context.pointee.err == 0, redisSetTimeout(context, configuration.commandTimeout.timevalValue) == REDIS_OK else {
            let error = fail(&link)
            link.retryAfter = .now + configuration.reconnectDelay
            throw error
        }
        _ = redisEnableKeepAlive(context)
        if let password = configuration.password {
            let command = [Array("AUTH".utf8)] + (configuration.user.map { [Array($0.utf8)] } ?? []) + [Array(password.utf8)]
            let reply = Self.withArgv(command) { argc, argv, lengths in redisCommandArgv(context, argc, argv, lengths) }
            guard let reply else { throw fail(&link) }
            let status = Self.copy(reply.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(reply)
            guard status == .status("OK") else {
                redisFree(context)
                link.context = nil
                link.retryAfter = .now + configuration.reconnectDelay
                logger.warning("Redis refused the credentials of REDIS_URL")
                throw .authenticationFailed
            }
        }
        link.retryAfter = nil
        return context
    }

    /// Classifies the context's error and drops the context: after an I/O error or a
    /// timeout its stream position is unknown, so it is never reused.
    private func fail(_ link: inout Link) -> CacheError {
        let code = errno
        guard let context = link.context else { return .unavailable }
        let error: CacheError =
            switch context.pointee.err {
            case REDIS_ERR_IO where code == EAGAIN || code == EWOULDBLOCK || code == ETIMEDOUT || code == EINPROGRESS: .timedOut
            case REDIS_ERR_PROTOCOL: .protocolViolation
            default: .unavailable
            }
        let reason = withUnsafeBytes(of: context.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        logger.debug("Redis call failed", metadata: ["reason": "\(reason)"])
        redisFree(context)
        link.context = nil
        return error
    }

    private static func copy(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let reply = reply.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            return .bulk(Array(UnsafeRawBufferPointer(start: reply.str, count: reply.len)))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: UnsafeRawBufferPointer(start: reply.str, count: reply.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(reply.integer))
        case REDIS_REPLY_ARRAY:
            return .array((0..<reply.elements).map { copy(reply.element[$0]!) })
        case REDIS_REPLY_ERROR:
            return .error
        default:
            return .null
        }
    }

    /// Calls `body` with argv and argument lengths: binary-safe, no NUL termination needed.
    private static func withArgv<T>(
        _ arguments: [[UInt8]], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> T
    ) -> T {
        let total = arguments.reduce(0) { $0 + $1.count }
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 1)
        defer { storage.deallocate() }
        var pointers: [UnsafePointer<CChar>?] = []
        var lengths: [Int] = []
        var offset = 0
        for argument in arguments {
            let start = storage.baseAddress! + offset
            argument.withUnsafeBytes { start.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(start), byteCount: $0.count) }
            pointers.append(UnsafePointer(start.assumingMemoryBound(to: CChar.self)))
            lengths.append(argument.count)
            offset += argument.count
        }
        return pointers.withUnsafeMutableBufferPointer { argv in
            lengths.withUnsafeBufferPointer { body(Int32(arguments.count), argv.baseAddress!, $0.baseAddress!) }
        }
    }
}

extension Duration {
    var timevalValue: timeval {
        let (seconds, attoseconds) = components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
