/// What one request does, chosen from the seed alone, before anything is sent; the ids it
/// needs come from the tenant's earlier answers when it runs.
enum Operation: String, Sendable, Codable, CaseIterable {
    case refreshToken = "token.refresh"
    case createCustomer = "customer.create"
    case readCustomer = "customer.read"
    case createInvoice = "invoice.create"
    case readInvoice = "invoice.read"
    case listInvoices = "invoice.list"
    case createPayment = "payment.create"
    case readPayment = "payment.read"
    case sendEmail = "notification.email"
    case sendSMS = "notification.sms"
    case sendWebhook = "notification.webhook"
    case readNotification = "notification.read"
    case ping = "ping"

    /// Relative weights of the CloudBill mix: reads outnumber writes, as in billing.
    static let defaultWeights: [(Operation, Double)] = [
        (.refreshToken, 2), (.createCustomer, 8), (.readCustomer, 12), (.createInvoice, 14),
        (.readInvoice, 20), (.listInvoices, 10), (.createPayment, 10), (.readPayment, 6),
        (.sendEmail, 5), (.sendSMS, 3), (.sendWebhook, 2), (.readNotification, 4),
    ]
}

/// One planned request: the same seed gives the same list of these.
struct PlannedRequest: Sendable, Equatable, Codable {
    let sequence: Int
    let tenant: Int
    let operation: Operation
    /// Random bits for the request's details (amounts, quantities, payment method).
    let variant: UInt32
}

/// Tenant weights like Zipf's law: the tenant of rank k gets weight 1/k^exponent, and the
/// seed decides which tenant holds which rank.
struct TenantWeights: Sendable, Equatable {
    let weights: [Double]

    init(count: Int, exponent: Double = 1.0, seed: UInt64) {
        var generator = SeededGenerator(seed: seed ^ 0x7E4A_4715)
        var ranks = Array(1...max(count, 1))
        for index in stride(from: ranks.count - 1, to: 0, by: -1) {
            let other = Int(generator.next() % UInt64(index + 1))
            ranks.swapAt(index, other)
        }
        let raw = ranks.map { 1 / pow(Double($0), exponent) }
        let total = raw.reduce(0, +)
        weights = raw.map { $0 / total }
    }
}

/// Draws the request sequence from the seed: which tenant, which operation, which details.
struct RequestPlanner: Sendable {
    private var generator: SeededGenerator
    private let tenantCumulative: [Double]
    private let operations: [Operation]
    private let operationCumulative: [Double]
    private var sequence = 0

    init(seed: UInt64, tenants: TenantWeights, mix: [(Operation, Double)] = Operation.defaultWeights) {
        generator = SeededGenerator(seed: seed)
        tenantCumulative = Self.cumulative(tenants.weights)
        operations = mix.map(\.0)
        operationCumulative = Self.cumulative(mix.map(\.1))
    }

    /// A planner whose every request is `operation` on tenant 0.
    init(seed: UInt64, only operation: Operation) {
        self.init(seed: seed, tenants: TenantWeights(count: 1, seed: seed), mix: [(operation, 1)])
    }

    private static func cumulative(_ weights: [Double]) -> [Double] {
        let total = weights.reduce(0, +)
        var running = 0.0
        return weights.map { running += $0 / total; return running }
    }

    private static func pick(_ cumulative: [Double], _ draw: Double) -> Int {
        var low = 0, high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if draw < cumulative[middle] { high = middle } else { low = middle + 1 }
        }
        return low
    }

    mutating func next() -> PlannedRequest {
        defer { sequence += 1 }
        let tenant = Self.pick(tenantCumulative, generator.unit())
        let operation = operations[Self.pick(operationCumulative, generator.unit())]
        let variant = UInt32(truncatingIfNeeded: generator.next())
        return PlannedRequest(sequence: sequence, tenant: tenant, operation: operation, variant: variant)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
