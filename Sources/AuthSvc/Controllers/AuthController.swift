import CloudBillKit
import Foundation
import Hummingbird

/// Auth's routes: the admin bootstrap, and the token endpoints the gateway calls.
struct AuthController {
    let repository: CredentialRepository
    let admin: AdminAuthorization
    let internalTokens: [String]
    let webhookAllowedOrigins: Set<WebhookOrigin>

    func addRoutes(to router: Router<CloudBillRequestContext>) {
        router.post("/admin/tenants", use: createTenant)
        router.post("/admin/tenants/{tenant_id}/api-keys", use: rotateKey)
        router.post("/internal/tokens", use: issueToken)
        router.post("/internal/tokens/verify", use: verifyToken)
        router.post("/internal/tokens/revoke", use: revokeToken)
        router.get("/internal/tenants/{tenant_id}", use: tenant)
    }

    struct CreateTenant: Decodable {
        let name: String
        let webhookURL: String?
        enum CodingKeys: String, CodingKey {
            case name
            case webhookURL = "webhook_url"
        }
    }

    struct CreatedTenant: Encodable {
        let tenantID: String
        let name: String
        let webhookURL: String?
        let apiKey: String
        enum CodingKeys: String, CodingKey {
            case tenantID = "tenant_id"
            case name
            case webhookURL = "webhook_url"
            case apiKey = "api_key"
        }
    }

    @Sendable func createTenant(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        try admin.check(request)
        let input = try await request.decodeJSON(as: CreateTenant.self, context: context)
        let name = try Validate.text(input.name, field: "name", maxLength: 200)
        let webhookURL = try input.webhookURL.map { try WebhookURL.validate($0, field: "webhook_url", allowedOrigins: webhookAllowedOrigins) }
        let (tenant, apiKey) = try await repository.createTenant(name: name, webhookURL: webhookURL)
        context.attribution.tenant = tenant.tenantID
        return try JSONResponse.make(
            CreatedTenant(tenantID: tenant.tenantID, name: tenant.name, webhookURL: tenant.webhookURL, apiKey: apiKey),
            status: .created
        )
    }

    struct RotateKey: Decodable {
        let revokeExisting: Bool?
        enum CodingKeys: String, CodingKey { case revokeExisting = "revoke_existing" }
    }

    struct RotatedKey: Encodable {
        let tenantID: String
        let apiKey: String
        let revokedKeys: Int
        enum CodingKeys: String, CodingKey {
            case tenantID = "tenant_id"
            case apiKey = "api_key"
            case revokedKeys = "revoked_keys"
        }
    }

    /// A new API key for the tenant; unless `revoke_existing` is false, its other keys and
    /// every token issued with them stop working.
    @Sendable func rotateKey(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        try admin.check(request)
        let tenantID = try context.parameters.require("tenant_id")
        guard InternalIdentity.isValidTenantID(tenantID) else { throw APIError(.notFound, "No tenant '\(tenantID.prefix(64))'.") }
        var request = request
        let isEmpty = (try? await request.collectBody(upTo: context.maxUploadSize))?.readableBytes == 0
        let input = isEmpty ? RotateKey(revokeExisting: nil) : try await request.decodeJSON(as: RotateKey.self, context: context)
        guard let rotated = try await repository.rotateKey(tenantID: tenantID, revokingExisting: input.revokeExisting ?? true) else {
            throw APIError(.notFound, "No tenant '\(tenantID)'.")
        }
        context.attribution.tenant = tenantID
        return try JSONResponse.make(RotatedKey(tenantID: tenantID, apiKey: rotated.apiKey, revokedKeys: rotated.revokedKeys), status: .created)
    }

    struct TokenRequest: Decodable {
        let apiKey: String
        enum CodingKeys: String, CodingKey { case apiKey = "api_key" }
    }

    struct TokenResponse: Encodable {
        let accessToken: String
        let tokenType = "Bearer"
        let expiresIn: Int
        let tenantID: String
        enum CodingKeys: String, CodingKey {
            case accessToken = "access_token"
            case tokenType = "token_type"
            case expiresIn = "expires_in"
            case tenantID = "tenant_id"
        }
    }

    @Sendable func issueToken(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        try context.requireInternalCaller(request, accepting: internalTokens)
        let input = try await request.decodeJSON(as: TokenRequest.self, context: context)
        guard let issued = try await repository.issueToken(apiKey: input.apiKey) else {
            throw APIError(.unauthorized, code: "invalid_api_key", "The API key is not valid.")
        }
        context.attribution.tenant = issued.tenantID
        return try JSONResponse.make(TokenResponse(
            accessToken: issued.token,
            expiresIn: max(0, Int(issued.expiresAt.timeIntervalSinceNow.rounded())),
            tenantID: issued.tenantID
        ))
    }

    struct TokenBody: Decodable {
        let token: String
    }

    struct Verification: Encodable {
        let tenantID: String
        let expiresIn: Int
        enum CodingKeys: String, CodingKey {
            case tenantID = "tenant_id"
            case expiresIn = "expires_in"
        }
    }

    @Sendable func verifyToken(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        try context.requireInternalCaller(request, accepting: internalTokens)
        let input = try await request.decodeJSON(as: TokenBody.self, context: context)
        guard let grant = try await repository.verify(token: input.token) else {
            throw APIError(.unauthorized, code: "invalid_token", "The access token is not valid or has expired.")
        }
        context.attribution.tenant = grant.tenantID
        return try JSONResponse.make(Verification(
            tenantID: grant.tenantID, expiresIn: max(0, Int(grant.expiresAt.timeIntervalSinceNow))
        ))
    }

    @Sendable func revokeToken(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        try context.requireInternalCaller(request, accepting: internalTokens)
        let input = try await request.decodeJSON(as: TokenBody.self, context: context)
        _ = try await repository.revoke(token: input.token)
        return Response(status: .noContent)
    }

    @Sendable func tenant(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        try context.requireInternalCaller(request, accepting: internalTokens)
        let tenantID = try context.parameters.require("tenant_id")
        guard InternalIdentity.isValidTenantID(tenantID), let tenant = try await repository.tenant(tenantID) else {
            throw APIError(.notFound, "No tenant '\(tenantID.prefix(64))'.")
        }
        return try JSONResponse.make(tenant)
    }
}
