import Foundation
import HTTPTypes
import Hummingbird

/// The admin fault API of every service, behind the admin token:
///
/// - `GET /admin/faults`: the active faults;
/// - `PUT /admin/faults`: replace the whole plan (`{"faults": {}}` clears everything);
/// - `DELETE /admin/faults`: clear every fault;
/// - `PUT /admin/faults/{kind}`: set one fault, leaving the others as they are;
/// - `DELETE /admin/faults/{kind}`: clear one fault.
///
/// Each answers with the active faults after the change. `docs/faults.md` describes the JSON.
struct FaultAdminController {
    static let path = "/admin/faults"
    let injector: FaultInjector
    let admin: AdminAuthorization

    func addRoutes(to router: Router<CloudBillRequestContext>) {
        router.get(RouterPath(Self.path), use: show)
        router.put(RouterPath(Self.path), use: replace)
        router.delete(RouterPath(Self.path), use: clearAll)
        router.put(RouterPath(Self.path + "/{kind}"), use: set)
        router.delete(RouterPath(Self.path + "/{kind}"), use: clear)
    }

    @Sendable func show(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        try admin.check(request)
        return try await state()
    }

    @Sendable func replace(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        try admin.check(request)
        let body = try await Self.readJSON(request, context: context)
        let plan: FaultPlan
        do {
            plan = try FaultPlan.parse(body, for: injector.capabilities)
        } catch {
            throw error.apiError
        }
        try await apply(plan.faults, replacingAll: true)
        return try await state()
    }

    @Sendable func set(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        try admin.check(request)
        let kind = try Self.kind(context)
        let body = try await Self.readJSON(request, context: context)
        let fault: Fault
        do {
            fault = try Fault.parse(kind, body, path: kind.rawValue, capabilities: injector.capabilities)
        } catch {
            throw error.apiError
        }
        try await apply([kind: fault], replacingAll: false)
        return try await state()
    }

    @Sendable func clearAll(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        try admin.check(request)
        await injector.clearAll()
        return try await state()
    }

    @Sendable func clear(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        try admin.check(request)
        await injector.clear(try Self.kind(context))
        return try await state()
    }

    private func apply(_ faults: [FaultKind: Fault], replacingAll: Bool) async throws {
        do {
            try await injector.apply(faults, replacingAll: replacingAll)
        } catch let error as BallastError {
            throw APIError(
                .serviceUnavailable, code: "ballast_unavailable",
                "The kernel refused to map \(error.megabytes) MiB for memory_ballast; nothing was changed."
            )
        }
    }

    private func state() async throws -> Response {
        try JSONResponse.make(await injector.state())
    }

    private static func kind(_ context: CloudBillRequestContext) throws -> FaultKind {
        let name = try context.parameters.require("kind")
        guard let kind = FaultKind(rawValue: name) else {
            throw APIError(.notFound, "No fault kind '\(name.prefix(64))'; the kinds are \(FaultKind.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        return kind
    }

    /// The body as JSON: sent as `application/json` or without a content type.
    private static func readJSON(_ request: Request, context: CloudBillRequestContext) async throws -> JSONValue {
        if let contentType = request.headers[.contentType],
           contentType.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() != "application/json" {
            throw APIError(.unsupportedMediaType, "Send the fault plan as JSON with Content-Type: application/json.")
        }
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: context.maxUploadSize)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "The request body is larger than \(context.maxUploadSize / 1024) KiB.")
        }
        guard let json = JSONValue.parse(Data(buffer: buffer)) else {
            throw APIError(.badRequest, code: "invalid_json", "The body is not valid JSON.")
        }
        return json
    }
}
