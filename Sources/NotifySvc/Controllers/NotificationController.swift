import CloudBillInstrumentation
import CloudBillKit
import CloudBillStorage
import Foundation
import Hummingbird

/// Notification's routes: queueing notifications, reading their status, and receipts.
struct NotificationController {
    let repository: NotificationRepository
    let queue: DeliveryQueue
    let client: ServiceClient
    let cache: Cache
    let configuration: ServiceConfiguration

    func addRoutes(to router: Router<CloudBillRequestContext>) {
        router.post("/api/v1/notifications", use: createNotification)
        router.get("/api/v1/notifications/{id}", use: notification)
        router.post("/internal/receipts", use: createReceipt)
    }

    struct CreateNotification: Decodable {
        let type: String
        let recipient: String
        let subject: String?
        let body: String
    }

    struct Accepted: Encodable {
        let id: UUID
        let status: String
    }

    @Sendable func createNotification(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        let tenant = try context.requireTenant()
        let input = try await request.decodeJSON(as: CreateNotification.self, context: context)
        guard let type = BusinessMetrics.NotificationType(rawValue: input.type) else {
            throw APIError(.unprocessableContent, "Field 'type' must be email, sms or webhook.")
        }
        let recipient: String
        switch type {
        case .email: recipient = try Validate.email(input.recipient, field: "recipient")
        case .sms: recipient = try Self.phoneNumber(input.recipient)
        case .webhook: recipient = try WebhookURL.validate(input.recipient, field: "recipient", allowedOrigins: configuration.webhookAllowedOrigins)
        }
        let subject = try input.subject.map { try Validate.text($0, field: "subject", maxLength: 200) }
        let body = try Validate.text(input.body, field: "body", maxLength: 10_000, allowingLineBreaks: true)
        guard !queue.isFull else {
            throw APIError(
                .serviceUnavailable, code: "notification_backlog",
                "Too many notifications wait for delivery; retry later.", headers: [.retryAfter: "5"]
            )
        }
        let notification = try await repository.create(tenant: tenant, type: type, recipient: recipient, subject: subject, body: body)
        queue.notifyStored()
        return try JSONResponse.make(Accepted(id: notification.id, status: notification.status), status: .accepted)
    }

    @Sendable func notification(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        let tenant = try context.requireTenant()
        let id = try Validate.uuid(try context.parameters.require("id"), field: "notification", inPath: true)
        guard let notification = try await repository.notification(tenant: tenant, id: id) else {
            throw APIError(.notFound, "No notification with id '\(id.uuidString.lowercased())'.")
        }
        return try JSONResponse.make(notification)
    }

    struct TenantWebhook: Decodable {
        let webhookURL: String?
        enum CodingKeys: String, CodingKey { case webhookURL = "webhook_url" }
    }

    /// A payment receipt, sent to the tenant's webhook when it has one.
    @Sendable func createReceipt(_ request: Request, context: CloudBillRequestContext) async throws -> Response {
        try context.requireInternalCaller(request, accepting: configuration.acceptedInternalTokens)
        let tenant = try context.requireTenant()
        let receipt = try await request.decodeJSON(as: PaymentReceipt.self, context: context)
        guard let url = try await webhookURL(of: tenant, context: context) else { return Response(status: .noContent) }
        let body = String(decoding: try JSONEncoder.iso8601Sorted.encode(receipt), as: UTF8.self)
        let notification = try await repository.create(tenant: tenant, type: .webhook, recipient: url, subject: "payment.receipt", body: body)
        queue.notifyStored()
        return try JSONResponse.make(Accepted(id: notification.id, status: notification.status), status: .accepted)
    }

    /// The tenant's webhook URL, from Auth; cached in Redis for a minute ("" when none).
    private func webhookURL(of tenant: String, context: CloudBillRequestContext) async throws -> String? {
        let key = "notify:tenant-webhook:\(tenant)"
        if let cached = await cache.getString(key, tenant: tenant) { return cached.isEmpty ? nil : cached }
        let response = try await client.send(
            .get, configuration.authURL, "/internal/tenants/\(tenant)", service: "auth-service", tenant: tenant, requestID: context.requestID
        )
        guard response.status == .ok else {
            throw APIError(.badGateway, "The auth-service answered \(response.status.code) for the tenant.")
        }
        let url = try response.decode(TenantWebhook.self).webhookURL
        await cache.set(key, url ?? "", ttl: .seconds(60), tenant: tenant)
        return url
    }

    /// An E.164 number as sent: `+`, then 8 to 15 ASCII digits, the first not 0.
    static func phoneNumber(_ value: String) throws -> String {
        let number = value
        let digits = number.utf8.dropFirst()
        guard number.hasPrefix("+"), (8...15).contains(digits.count), digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              digits.first != UInt8(ascii: "0") else {
            throw APIError(.unprocessableContent, "Field 'recipient' must be a phone number in E.164 form, like +14155550100.")
        }
        return number
    }
}
