import Foundation
import Synchronization

/// What actually ran for a planned request: the operation (after falling back when the
/// tenant had no id to use yet) and how it ended.
struct ExecutedRequest: Sendable {
    let operation: Operation
    let status: Int?
    let result: ResultClass
}

/// Sends the requests of a mix.
protocol TrafficSource: Sendable {
    func execute(_ request: PlannedRequest) async -> ExecutedRequest
}

/// One GET on one URL: stubs and benchmarks.
struct PingTraffic: TrafficSource {
    let transport: Transport
    let url: String

    func execute(_ request: PlannedRequest) async -> ExecutedRequest {
        do {
            let answer = try await transport.send("GET", url)
            return ExecutedRequest(operation: .ping, status: answer.status, result: ResultClass(status: answer.status))
        } catch {
            return ExecutedRequest(operation: .ping, status: nil, result: error.kind)
        }
    }
}

/// Why the tenants could not be set up.
enum BootstrapError: Error, CustomStringConvertible {
    case unreachable(String)
    case rejected(String)

    var description: String {
        switch self {
        case .unreachable(let detail): return "the gateway cannot be reached: \(detail)"
        case .rejected(let detail): return "the gateway refused to create a tenant: \(detail)"
        }
    }
}

/// A tenant's credentials and the ids its earlier requests created.
struct TenantState: Sendable {
    let tenantID: String
    let apiKey: String
    var token: String
    var tokenIssued: ContinuousClock.Instant
    var customers: [String] = []
    var invoices: [String] = []
    var openInvoices: [String] = []
    var payments: [String] = []
    var notifications: [String] = []

    static let keptIDs = 200

    static func remember(_ id: String, in list: inout [String]) {
        if list.count >= keptIDs { list.removeFirst(list.count - keptIDs + 1) }
        list.append(id)
    }
}

/// A tenant and its lock: requests of different tenants never wait on each other.
final class TenantSession: Sendable {
    /// Guards the tenant's token and remembered ids.
    let state: Mutex<TenantState>
    init(_ state: TenantState) { self.state = Mutex(state) }
}

/// Tenants walking CloudBill's real flows through the gateway.
final class CloudBillTraffic: TrafficSource {
    let transport: Transport
    let gatewayURL: String
    let webhookURL: String
    let runID: String
    let tenants: [TenantSession]
    /// Where acknowledged payments are written, when asked for.
    let journal: PaymentJournal?
    /// Payments in a million sent with `pm_processor_error`: 2,000 (0.2%) at real time. At
    /// `--time-scale` s a 5-minute window holds s times fewer payments, so one such error
    /// weighs s times more in PaymentProcessorErrors' ratio (5%); they are made s times
    /// rarer. Otherwise, at 1/30 time, two in one window of about 30 payments paged now and
    /// then with no fault at all.
    let processorErrorsPerMillion: Int

    static func processorErrorsPerMillion(timeScale: Double) -> Int { Int((2_000 / max(1, timeScale)).rounded()) }

    static let tokenLifetime: Duration = .seconds(600)

    private init(transport: Transport, gatewayURL: String, webhookURL: String, runID: String, tenants: [TenantState], journal: PaymentJournal?,
                 timeScale: Double) {
        self.transport = transport
        self.processorErrorsPerMillion = Self.processorErrorsPerMillion(timeScale: timeScale)
        self.journal = journal
        self.gatewayURL = gatewayURL
        self.webhookURL = webhookURL
        self.runID = runID
        self.tenants = tenants.map { TenantSession($0) }
    }

    /// Creates `count` tenants through the admin API and gets each a token.
    /// `transport` sets them up; `sendingWith` carries the traffic.
    static func bootstrap(count: Int, transport: Transport, sendingWith trafficTransport: Transport, gatewayURL: String, adminToken: String,
                          webhookURL: String, runID: String, journal: PaymentJournal? = nil, timeScale: Double = 1) async throws(BootstrapError) -> CloudBillTraffic {
        var states: [TenantState] = []
        for index in 0..<count {
            let body = json(["name": "loadgen \(runID) tenant \(index + 1)", "webhook_url": webhookURL])
            let created: HTTPAnswer
            do {
                created = try await transport.send("POST", gatewayURL + "/admin/tenants", headers: [("X-Admin-Token", adminToken)], body: body)
            } catch {
                throw .unreachable(error.description)
            }
            guard created.status == 201 || created.status == 200, let tenantID = created.json?["tenant_id"] as? String, let apiKey = created.json?["api_key"] as? String else {
                throw .rejected("POST /admin/tenants answered \(created.status): \(String(decoding: created.body, as: UTF8.self))")
            }
            let token: String
            do {
                let answer = try await transport.send("POST", gatewayURL + "/api/v1/auth/token", body: json(["api_key": apiKey]))
                guard let value = answer.json?["access_token"] as? String else {
                    throw BootstrapError.rejected("POST /api/v1/auth/token answered \(answer.status)")
                }
                token = value
            } catch let error as TransportFailure {
                throw .unreachable(error.description)
            } catch let error as BootstrapError {
                throw error
            } catch {
                throw .rejected("\(error)")
            }
            states.append(TenantState(tenantID: tenantID, apiKey: apiKey, token: token, tokenIssued: .now))
        }
        return CloudBillTraffic(transport: trafficTransport, gatewayURL: gatewayURL, webhookURL: webhookURL, runID: runID, tenants: states, journal: journal,
                                timeScale: timeScale)
    }

    /// Tenants another run created and saved (`--tenants-file`): one `tenant_id<TAB>api_key`
    /// a line. Each gets a fresh token; nothing is created. Their webhook is the one they were
    /// created with, so runs that share tenants share a webhook URL that outlives them.
    static func resume(saved: [(tenantID: String, apiKey: String)], transport: Transport, sendingWith trafficTransport: Transport, gatewayURL: String,
                       webhookURL: String, runID: String, journal: PaymentJournal? = nil, timeScale: Double = 1) async throws(BootstrapError) -> CloudBillTraffic {
        var states: [TenantState] = []
        for (tenantID, apiKey) in saved {
            let answer: HTTPAnswer
            do {
                answer = try await transport.send("POST", gatewayURL + "/api/v1/auth/token", body: json(["api_key": apiKey]))
            } catch {
                throw .unreachable(error.description)
            }
            guard let token = answer.json?["access_token"] as? String else {
                throw .rejected("POST /api/v1/auth/token for saved tenant \(tenantID) answered \(answer.status)")
            }
            states.append(TenantState(tenantID: tenantID, apiKey: apiKey, token: token, tokenIssued: .now))
        }
        return CloudBillTraffic(transport: trafficTransport, gatewayURL: gatewayURL, webhookURL: webhookURL, runID: runID, tenants: states, journal: journal,
                                timeScale: timeScale)
    }

    /// The saved form `resume` reads.
    var savedTenants: String {
        tenants.map { $0.state.withLock { "\($0.tenantID)\t\($0.apiKey)" } }.joined(separator: "\n") + "\n"
    }

    static func json(_ object: [String: Any]) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
    }

    /// The operation that can run now: a read needs something to read, a payment an open
    /// invoice; without one, the request creates what was missing instead.
    static func resolve(_ operation: Operation, _ state: TenantState) -> Operation {
        if ContinuousClock.now - state.tokenIssued > tokenLifetime { return .refreshToken }
        switch operation {
        case .readCustomer, .createInvoice: return state.customers.isEmpty ? .createCustomer : operation
        case .readInvoice: return state.invoices.isEmpty ? resolve(.createInvoice, state) : operation
        case .createPayment: return state.openInvoices.isEmpty ? resolve(.createInvoice, state) : operation
        case .readPayment: return state.payments.isEmpty ? resolve(.createPayment, state) : operation
        case .readNotification: return state.notifications.isEmpty ? .sendEmail : operation
        default: return operation
        }
    }

    func execute(_ request: PlannedRequest) async -> ExecutedRequest {
        let tenant = tenants[request.tenant]
        let variant = Int(request.variant)
        // Chooses the operation and takes what it needs under the tenant's lock.
        let (operation, token, apiKey, id): (Operation, String, String, String?) = tenant.state.withLock { state in
            let operation = Self.resolve(request.operation, state)
            func pick(_ list: [String]) -> String? { list.isEmpty ? nil : list[variant % list.count] }
            var id: String?
            switch operation {
            case .readCustomer, .createInvoice: id = pick(state.customers)
            case .readInvoice: id = pick(state.invoices)
            case .createPayment: id = state.openInvoices.popLast()
            case .readPayment: id = pick(state.payments)
            case .readNotification: id = pick(state.notifications)
            default: id = nil
            }
            return (operation, state.token, state.apiKey, id)
        }
        let api = gatewayURL + "/api/v1"
        var headers = [("Authorization", "Bearer \(token)")]
        let method: String
        let url: String
        var body: [UInt8]?
        switch operation {
        case .refreshToken:
            method = "POST"; url = api + "/auth/token"; headers = []
            body = Self.json(["api_key": apiKey])
        case .createCustomer:
            method = "POST"; url = api + "/customers"
            body = Self.json(["name": "Customer \(request.sequence)", "email": "c\(request.sequence)@example.com"])
        case .readCustomer:
            method = "GET"; url = api + "/customers/\(id ?? "")"
        case .createInvoice:
            method = "POST"; url = api + "/invoices"
            let currencies = ["USD", "USD", "USD", "EUR", "GBP"]
            body = Self.json([
                "customer_id": id ?? "", "currency": currencies[variant % currencies.count], "tax_rate_bps": 800,
                "line_items": [["description": "Seats", "quantity": 1 + variant % 9, "unit_amount_cents": 500 + (variant >> 8) % 5000]],
            ])
        case .readInvoice:
            method = "GET"; url = api + "/invoices/\(id ?? "")"
        case .listInvoices:
            method = "GET"; url = api + "/invoices?status=open&limit=20"
        case .createPayment:
            method = "POST"; url = api + "/payments"
            let draw = (variant >> 4) % 1_000_000
            // Rare failures well under the alert thresholds (10% declines, 5% processor errors):
            // 2% declines, and processor errors as processorErrorsPerMillion says.
            let paymentMethod = draw < 20_000 ? "pm_declined" : draw < 20_000 + processorErrorsPerMillion ? "pm_processor_error" : "pm_ok"
            headers.append(("Idempotency-Key", "lg-\(runID)-\(request.sequence)"))
            body = Self.json(["invoice_id": id ?? "", "payment_method": paymentMethod])
        case .readPayment:
            method = "GET"; url = api + "/payments/\(id ?? "")"
        case .sendEmail:
            method = "POST"; url = api + "/notifications"
            body = Self.json(["type": "email", "recipient": "billing+\(request.sequence)@example.com", "subject": "Your invoice", "body": "Your invoice is ready."])
        case .sendSMS:
            method = "POST"; url = api + "/notifications"
            body = Self.json(["type": "sms", "recipient": "+1415555\(String(format: "%04d", variant % 10000))", "body": "Payment received."])
        case .sendWebhook:
            method = "POST"; url = api + "/notifications"
            body = Self.json(["type": "webhook", "recipient": webhookURL, "subject": "invoice.created", "body": "{\"event\":\"invoice.created\"}"])
        case .readNotification:
            method = "GET"; url = api + "/notifications/\(id ?? "")"
        case .ping:
            method = "GET"; url = gatewayURL + "/health"
        }
        let answer: HTTPAnswer
        do {
            answer = try await transport.send(method, url, headers: headers, body: body)
        } catch {
            if operation == .createPayment, let id { tenant.state.withLock { $0.openInvoices.append(id) } }
            return ExecutedRequest(operation: operation, status: nil, result: error.kind)
        }
        remember(operation, answer, tenant: tenant, takenInvoice: id)
        return ExecutedRequest(operation: operation, status: answer.status, result: ResultClass(status: answer.status))
    }

    private func remember(_ operation: Operation, _ answer: HTTPAnswer, tenant: TenantSession, takenInvoice: String?) {
        let succeeded = (200..<300).contains(answer.status)
        switch operation {
        case .refreshToken:
            guard succeeded, let token = answer.json?["access_token"] as? String else { return }
            tenant.state.withLock { $0.token = token; $0.tokenIssued = .now }
        case .createCustomer:
            guard succeeded, let id = answer.json?["id"] as? String else { return }
            tenant.state.withLock { TenantState.remember(id, in: &$0.customers) }
        case .createInvoice:
            guard succeeded, let id = answer.json?["id"] as? String else { return }
            tenant.state.withLock { TenantState.remember(id, in: &$0.invoices); TenantState.remember(id, in: &$0.openInvoices) }
        case .createPayment:
            if succeeded, let id = answer.json?["id"] as? String {
                let status = answer.json?["status"] as? String ?? ""
                let failed = status == "failed"
                journal?.record(id: id, status: status)
                tenant.state.withLock {
                    TenantState.remember(id, in: &$0.payments)
                    if failed, let invoice = takenInvoice { $0.openInvoices.append(invoice) }
                }
            } else if answer.status >= 500, let invoice = takenInvoice {
                tenant.state.withLock { $0.openInvoices.append(invoice) }
            }
        case .sendEmail, .sendSMS, .sendWebhook:
            guard succeeded, let id = answer.json?["id"] as? String else { return }
            tenant.state.withLock { TenantState.remember(id, in: &$0.notifications) }
        default:
            return
        }
    }
}
