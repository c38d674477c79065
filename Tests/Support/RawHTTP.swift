import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Sends raw bytes to a local server and reads what comes back, for requests no HTTP
/// client would send: malformed or oversized headers.
public enum RawHTTP {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Writes `request` to 127.0.0.1:`port` while reading the answer, until the server
    /// closes or `timeoutSeconds` pass. Reading while writing matters: a server that
    /// answers an oversized request early and then resets the connection would otherwise
    /// take its answer with it.
    ///
    /// The socket calls block, so they run on a thread of their own: a server in the same
    /// process needs the cooperative pool to answer.
    public static func exchange(_ request: [UInt8], port: Int, timeoutSeconds: Int = 5) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try blockingExchange(request, port: port, timeoutSeconds: timeoutSeconds) })
            }
            thread.start()
        }
    }

    static func blockingExchange(_ request: [UInt8], port: Int, timeoutSeconds: Int) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect to port \(port) failed: errno \(errno)") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)

        let deadline = ContinuousClock.now + .seconds(timeoutSeconds)
        var sent = 0
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while ContinuousClock.now < deadline {
            var events = Int16(POLLIN)
            if sent < request.count { events |= Int16(POLLOUT) }
            var descriptor = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&descriptor, 1, 100)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            if descriptor.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 {
                    response.append(contentsOf: buffer[0..<n])
                    continue
                }
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                break  // closed or reset: what was read is the answer
            }
            if descriptor.revents & Int16(POLLOUT) != 0 {
                let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n > 0 { sent += n } else if n < 0 && errno != EAGAIN && errno != EINTR { sent = request.count }
            }
        }
        return String(decoding: response, as: UTF8.self)
    }

    /// The status code of a raw response, if it has a status line.
    public static func status(of response: String) -> Int? {
        guard response.hasPrefix("HTTP/1.") else { return nil }
        let parts = response.split(separator: " ", maxSplits: 2)
        return parts.count >= 2 ? Int(parts[1]) : nil
    }
}
