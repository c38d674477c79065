import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A loopback HTTP endpoint that answers every request with 204, so that the webhook
/// notifications loadgen asks for are delivered somewhere that says yes. One dedicated
/// thread, blocking accept/read: none of it runs on the cooperative pool.
final class WebhookSink: @unchecked Sendable {  // `listener` is set once in init; the thread owns the rest.
    let port: Int
    private let listener: Int32

    var url: String { "http://127.0.0.1:\(port)/loadgen-webhook" }

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ConfigurationError(field: "webhook", message: "socket() failed") }
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, listen(fd, 128) == 0 else { close(fd); throw ConfigurationError(field: "webhook", message: "cannot listen on 127.0.0.1") }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [fd] in Self.serve(fd) }
        thread.name = "loadgen-webhook-sink"
        thread.start()
    }

    private static func serve(_ listener: Int32) {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 { if errno == EINTR { continue }; return }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            handle(connection)
            close(connection)
        }
    }

    /// Reads one request (headers and Content-Length body), answers 204 and closes.
    private static func handle(_ connection: Int32) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        var expected: Int?
        while expected.map({ received.count < $0 }) ?? true {
            let count = read(connection, &buffer, buffer.count)
            if count <= 0 { break }
            received.append(contentsOf: buffer[0..<count])
            if expected == nil, let end = received.firstRange(of: [13, 10, 13, 10]) {
                let head = String(decoding: received[..<end.lowerBound], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                expected = end.upperBound + length
            }
        }
        let answer = Array("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
        _ = answer.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
    }
}
