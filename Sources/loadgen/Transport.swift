import AsyncHTTPClient
import Foundation
import NIOCore

/// How a request ended, as the summaries count it.
enum ResultClass: String, Sendable, Codable, CaseIterable {
    case informational = "1xx", success = "2xx", redirect = "3xx", clientError = "4xx", serverError = "5xx"
    /// No connection could be made (refused, connect timeout).
    case connect
    /// No complete answer within the request timeout; recorded at the timeout.
    case timeout
    /// The connection broke after it was made.
    case io

    init(status: Int) {
        switch status {
        case ..<200: self = .informational
        case 200..<300: self = .success
        case 300..<400: self = .redirect
        case 400..<500: self = .clientError
        default: self = .serverError
        }
    }

    var isError: Bool { !(self == .success || self == .redirect || self == .informational) }
}

struct HTTPAnswer: Sendable {
    let status: Int
    let body: [UInt8]

    /// The body as a JSON object, when it is one.
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
}

struct TransportFailure: Error, CustomStringConvertible {
    let kind: ResultClass
    let detail: String
    var description: String { "\(kind.rawValue): \(detail)" }
}

/// An HTTP/1.1 client with a fixed number of keep-alive connections per host.
final class Transport: Sendable {
    let client: HTTPClient
    let timeout: Double

    init(connections: Int, timeout: Double) {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(connections, 1))
        configuration.timeout = .init(connect: .milliseconds(Int64(min(timeout, 5) * 1000)))
        configuration.httpVersion = .http1Only
        configuration.decompression = .disabled
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.timeout = timeout
    }

    func send(_ method: String, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil) async throws(TransportFailure) -> HTTPAnswer {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            // Once: a second Content-Type reads as "application/json, application/json",
            // which the services' fault API refuses with 415.
            if !request.headers.contains(name: "Content-Type") { request.headers.add(name: "Content-Type", value: "application/json") }
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            let buffer = try await response.body.collect(upTo: 4 << 20)
            return HTTPAnswer(status: Int(response.status.code), body: Array(buffer.readableBytesView))
        } catch {
            throw Self.classify(error)
        }
    }

    static func classify(_ error: any Error) -> TransportFailure {
        let text = String(describing: error)
        let lowered = text.lowercased()
        if let clientError = error as? HTTPClientError {
            switch clientError {
            case .deadlineExceeded, .readTimeout, .writeTimeout: return TransportFailure(kind: .timeout, detail: text)
            case .connectTimeout: return TransportFailure(kind: .connect, detail: text)
            default: break
            }
        }
        if error is CancellationError { return TransportFailure(kind: .timeout, detail: text) }
        if lowered.contains("connect") || lowered.contains("refused") || lowered.contains("unreachable") {
            return TransportFailure(kind: .connect, detail: text)
        }
        if lowered.contains("timeout") || lowered.contains("deadline") || lowered.contains("timedout") {
            return TransportFailure(kind: .timeout, detail: text)
        }
        return TransportFailure(kind: .io, detail: text)
    }

    func shutdown() async {
        try? await client.shutdown()
    }
}
