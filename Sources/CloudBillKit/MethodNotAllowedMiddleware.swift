import HTTPTypes
import Hummingbird
import Synchronization

/// The methods each route template of a service answers, filled once when the application
/// is made (``ServiceApplication/makeApplication()``), read on every unmatched request.
public final class RouteTable: Sendable {
    private let routes = Mutex<[(segments: [Substring], methods: Set<String>)]>([])

    public init() {}

    /// Replaces the table with the router's routes.
    public func load(_ descriptions: [Router<CloudBillRequestContext>.RouteDescription]) {
        var byPath: [String: Set<String>] = [:]
        for route in descriptions {
            byPath[route.path.description, default: []].insert(route.method.rawValue)
        }
        routes.withLock {
            $0 = byPath.map { (Self.segments($0.key), $0.value) }
        }
    }

    /// The methods of the route whose template matches `path`, or nil when none does.
    /// A `{parameter}` segment matches any one segment; `*` too, `**` the rest.
    public func methods(for path: String) -> Set<String>? {
        let wanted = Self.segments(path)
        return routes.withLock { routes in
            var found: Set<String>?
            for route in routes where Self.matches(route.segments, wanted) {
                found = (found ?? []).union(route.methods)
            }
            return found
        }
    }

    private static func segments(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }

    private static func matches(_ template: [Substring], _ path: [Substring]) -> Bool {
        for (index, part) in template.enumerated() {
            if part == "**" { return true }
            guard index < path.count else { return false }
            if part == "*" || (part.first == "{" && part.last == "}") { continue }
            if part != path[index] { return false }
        }
        return template.count == path.count
    }
}

/// Answers 405 Method Not Allowed, with the `Allow` header, when the path is one of the
/// service's routes but the method is not one it answers; the router alone would say 404,
/// which tells a client the resource does not exist (RFC 9110, 15.5.6).
public struct MethodNotAllowedMiddleware: RouterMiddleware {
    public typealias Context = CloudBillRequestContext

    let table: RouteTable

    public init(table: RouteTable) {
        self.table = table
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            guard let methods = table.methods(for: request.uri.path), !methods.contains(request.method.rawValue) else {
                throw error
            }
            let list = methods.sorted().joined(separator: ", ")
            throw APIError(
                .methodNotAllowed, code: "method_not_allowed",
                "\(request.method.rawValue) is not allowed on this path; it answers \(list).",
                headers: [.allow: list]
            )
        }
    }
}
