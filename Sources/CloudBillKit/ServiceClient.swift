import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// Why a call to another CloudBill service got no answer.
public enum DownstreamError: Error, Sendable, Equatable {
    /// Nothing accepted the connection: the service is down.
    case unavailable(service: String)
    /// The service did not answer within the call's timeout.
    case timedOut(service: String)
}

/// An answer from another service.
public struct DownstreamResponse: Sendable {
    public let status: HTTPResponse.Status
    public let headers: HTTPFields
    public let body: ByteBuffer

    /// Decodes the body as JSON.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(buffer: body))
    }
}

/// Calls the other services with the gateway's identity headers: the internal secret, the
/// tenant the call is for, and the request id it continues.
public final class ServiceClient: Service, Sendable {
    let http: HTTPClient
    let internalToken: String

    public init(eventLoopGroup: any EventLoopGroup, internalToken: String) {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        configuration.timeout = .init(connect: .seconds(1), read: .seconds(10))
        configuration.redirectConfiguration = .disallow
        self.http = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
        self.internalToken = internalToken
    }

    /// Shuts the client down once the application stops.
    public func run() async throws {
        try? await gracefulShutdown()
        try await http.shutdown()
    }

    /// Sends one request to `baseURL + path`.
    ///
    /// - Parameters:
    ///   - service: the callee's name, for errors and logs.
    ///   - tenant: the tenant the call is made for; nil sends no tenant.
    public func send(
        _ method: HTTPRequest.Method,
        _ baseURL: String,
        _ path: String,
        service: String,
        tenant: String?,
        requestID: String,
        headers extra: HTTPFields = [:],
        body: ByteBuffer? = nil,
        timeout: Duration = .seconds(5)
    ) async throws -> DownstreamResponse {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .init(rawValue: method.rawValue)
        for field in extra { request.headers.add(name: field.name.canonicalName, value: field.value) }
        request.headers.replaceOrAdd(name: InternalIdentity.tokenHeader.canonicalName, value: internalToken)
        if let tenant { request.headers.replaceOrAdd(name: InternalIdentity.tenantHeader.canonicalName, value: tenant) }
        request.headers.replaceOrAdd(name: RequestIDMiddleware.header.canonicalName, value: requestID)
        if let body {
            request.body = .bytes(body)
            if !request.headers.contains(name: "Content-Type") { request.headers.add(name: "Content-Type", value: "application/json") }
        }
        do {
            let response = try await http.execute(request, timeout: .nanoseconds(Int64(timeout.seconds * 1e9)))
            let bytes = try await response.body.collect(upTo: 4 * 1024 * 1024)
            var fields = HTTPFields()
            for header in response.headers {
                if let name = HTTPField.Name(header.name) { fields.append(HTTPField(name: name, value: header.value)) }
            }
            return DownstreamResponse(status: HTTPResponse.Status(code: Int(response.status.code)), headers: fields, body: bytes)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw DownstreamError.timedOut(service: service)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            // Refused, reset and failed connects surface as HTTPClientError, NIOConnectionError
            // or IOError: to the caller they all mean the service did not answer.
            throw DownstreamError.unavailable(service: service)
        }
    }

    /// Sends `value` as JSON.
    public func sendJSON(
        _ method: HTTPRequest.Method,
        _ baseURL: String,
        _ path: String,
        service: String,
        tenant: String?,
        requestID: String,
        json value: some Encodable,
        timeout: Duration = .seconds(5)
    ) async throws -> DownstreamResponse {
        let data = try JSONEncoder().encode(value)
        return try await send(
            method, baseURL, path, service: service, tenant: tenant, requestID: requestID,
            body: ByteBuffer(bytes: data), timeout: timeout
        )
    }
}
