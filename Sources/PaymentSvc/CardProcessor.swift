import CloudBillKit

/// The simulated card processor: it takes time like a real one and answers by the test
/// payment method, unless an injected fault makes it fail (`processor_errors`) or decline
/// cards it would approve (`payment_declines`).
struct CardProcessor: Sendable {
    enum Outcome: Equatable, Sendable {
        case approved
        case declined(reason: String)
    }

    /// The test payment methods and what the processor does with each.
    static let methods: [String: Outcome] = [
        "pm_ok": .approved,
        "pm_declined": .declined(reason: "card_declined"),
        "pm_processor_error": .declined(reason: "processor_error"),
    ]

    /// Processor latency: uniform in this range.
    let latency: ClosedRange<Int> = 20...80
    let faults: FaultInjector

    func charge(amountCents: Int64, currency: String, method: String) async throws -> Outcome {
        try await Task.sleep(for: .milliseconds(Int.random(in: latency)))
        if faults.shouldInject(.processorErrors) { return .declined(reason: "processor_error") }
        let outcome = Self.methods[method] ?? .declined(reason: "unknown_payment_method")
        if outcome == .approved, faults.shouldInject(.paymentDeclines) { return .declined(reason: "card_declined") }
        return outcome
    }
}
