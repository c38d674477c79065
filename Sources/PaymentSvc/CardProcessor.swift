/// The simulated card processor: it takes time like a real one and answers by the test
/// payment method.
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

    func charge(amountCents: Int64, currency: String, method: String) async throws -> Outcome {
        try await Task.sleep(for: .milliseconds(Int.random(in: latency)))
        return Self.methods[method] ?? .declined(reason: "unknown_payment_method")
    }
}
