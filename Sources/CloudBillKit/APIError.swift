import CloudBillStorage
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// An error a client can act on: an HTTP status, a stable machine-readable code and a
/// sentence naming the problem. Rendered as `{"error", "message", "request_id"}`.
public struct APIError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public let headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String? = nil, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code ?? APIError.code(for: status)
        self.message = message
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let requestID = (context as? CloudBillRequestContext)?.requestID ?? ""
        return render(requestID: requestID)
    }

    /// The JSON response for this error.
    public func render(requestID: String) -> Response {
        let body = ErrorBody(error: code, message: message, request_id: requestID)
        let data = (try? JSONResponse.encoder.encode(body)) ?? Data(#"{"error":"internal_error"}"#.utf8)
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The default code of a status: its reason phrase in snake case.
    public static func code(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "bad_request"
        case 401: "unauthorized"
        case 403: "forbidden"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 409: "conflict"
        case 413: "payload_too_large"
        case 415: "unsupported_media_type"
        case 422: "unprocessable_entity"
        case 429: "rate_limited"
        case 500: "internal_error"
        case 502: "bad_gateway"
        case 503: "service_unavailable"
        case 504: "gateway_timeout"
        default: status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "_")
        }
    }

    private struct ErrorBody: Encodable {
        let error: String
        let message: String
        let request_id: String
    }
}

/// Turns every error thrown below it into a JSON ``APIError`` response: the client always
/// gets a body naming the problem, and never the text of an internal failure.
public struct ErrorResponseMiddleware: RouterMiddleware {
    public typealias Context = CloudBillRequestContext

    public init() {}

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.render(requestID: context.requestID)
        } catch let error as HTTPError {
            return APIError(error.status, Self.message(for: error, request: request), headers: error.headers)
                .render(requestID: context.requestID)
        } catch let error as DatabaseError {
            return Self.apiError(for: error, context: context).render(requestID: context.requestID)
        } catch let error as DownstreamError {
            return Self.apiError(for: error).render(requestID: context.requestID)
        } catch let error as any HTTPResponseError where error.status.code < 500 {
            return APIError(error.status, error.status.reasonPhrase).render(requestID: context.requestID)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))", "request_id": "\(context.requestID)"])
            return APIError(.internalServerError, "The server failed to handle the request.")
                .render(requestID: context.requestID)
        }
    }

    /// What a client is told when PostgreSQL fails: never the server's text.
    static func apiError(for error: DatabaseError, context: Context) -> APIError {
        switch error {
        case .connectionUnavailable, .poolClosed:
            return APIError(.serviceUnavailable, code: "database_unavailable", "The database is unavailable; retry later.", headers: [.retryAfter: "1"])
        case .acquireTimedOut:
            return APIError(.serviceUnavailable, code: "database_busy", "The service is saturated; retry later.", headers: [.retryAfter: "1"])
        case .statementTimedOut:
            return APIError(.serviceUnavailable, code: "database_timeout", "The database did not answer in time; retry later.", headers: [.retryAfter: "1"])
        case .constraintViolated:
            return APIError(.conflict, "The request conflicts with data that already exists.")
        case .queryFailed(let state):
            context.logger.error("query failed", metadata: ["sqlstate": "\(state)", "request_id": "\(context.requestID)"])
            return APIError(.internalServerError, "The server failed to handle the request.")
        }
    }

    /// What a client is told when a service the request depends on does not answer.
    static func apiError(for error: DownstreamError) -> APIError {
        switch error {
        case .unavailable(let service):
            APIError(.badGateway, "The \(service) is not reachable.")
        case .timedOut(let service):
            APIError(.gatewayTimeout, "The \(service) did not answer in time.")
        }
    }

    static func message(for error: HTTPError, request: Request) -> String {
        if let body = error.body, !body.isEmpty { return body }
        switch error.status {
        case .notFound: return "No route for \(request.method.rawValue) \(request.uri.path)."
        case .contentTooLarge: return "The request body is larger than the service accepts."
        default: return error.status.reasonPhrase
        }
    }
}

/// JSON responses with a chosen status.
public enum JSONResponse {
    /// Sorted keys, unescaped slashes, ISO 8601 dates.
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    public static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        make(bytes: try encoder.encode(value), status: status, headers: headers)
    }

    /// A response of JSON already encoded (by ``encoder``, or stored as it encoded it).
    public static func make(bytes: some Sequence<UInt8>, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
