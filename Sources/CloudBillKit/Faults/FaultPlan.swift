import CloudBillInstrumentation
import CloudBillStorage
import Foundation

/// What one fault does while it is active; every case's parameters are valid.
public enum FaultSetting: Sendable, Equatable {
    /// A share of requests (of some route templates and tenants, or all) answered with `status`.
    case httpErrors(rate: Double, status: Int, routes: Set<String>?, tenants: Set<String>? = nil)
    /// A share of requests (of some route templates, or all) delayed before they are handled.
    case latency(DelayDistribution, rate: Double, routes: Set<String>?)
    /// A share of statements preceded by `pg_sleep` in the same PostgreSQL session.
    case dbSlow(milliseconds: Int, rate: Double, timeoutMilliseconds: Int?)
    /// The pool may hold at most this many connections.
    case dbPoolLimit(maximumConnections: Int)
    /// Keys matching `pattern` are removed now and, with an interval, again at every interval.
    case cacheFlush(pattern: String, interval: Duration?)
    /// A share of reads ask Redis for a key no one writes, and so miss.
    case cacheBypass(rate: Double)
    /// A share of Redis commands preceded, on the same connection, by a script that keeps
    /// Redis busy for `milliseconds`.
    case redisSlow(milliseconds: Int, rate: Double)
    case paymentDeclines(rate: Double)
    case processorErrors(rate: Double)
    case invoiceFailures(rate: Double)
    case notificationFailures(rate: Double, channels: Set<BusinessMetrics.NotificationType>)
    /// Mebibytes mapped and written, held until the fault clears.
    case memoryBallast(megabytes: Int)
    /// The cores background threads keep busy (a share of one, or more over several threads).
    case cpuBurn(share: Double)
    /// One event loop blocked by back-to-back tasks of `milliseconds` each.
    case eventLoopBlock(milliseconds: Int)
    /// Descriptors opened, `perSecond` a second, until the process holds `share` of its limit.
    case fdLeak(share: Double, perSecond: Int)

    public var kind: FaultKind {
        switch self {
        case .httpErrors: .httpErrors
        case .latency: .latency
        case .dbSlow: .dbSlow
        case .dbPoolLimit: .dbPoolLimit
        case .cacheFlush: .cacheFlush
        case .cacheBypass: .cacheBypass
        case .redisSlow: .redisSlow
        case .paymentDeclines: .paymentDeclines
        case .processorErrors: .processorErrors
        case .invoiceFailures: .invoiceFailures
        case .notificationFailures: .notificationFailures
        case .memoryBallast: .memoryBallast
        case .cpuBurn: .cpuBurn
        case .eventLoopBlock: .eventLoopBlock
        case .fdLeak: .fdLeak
        }
    }

    /// The parameters as the admin API writes them, defaults filled in.
    var parameters: [String: JSONValue] {
        func routeList(_ routes: Set<String>?) -> [String: JSONValue] {
            routes.map { ["routes": .array($0.sorted().map(JSONValue.string))] } ?? [:]
        }
        switch self {
        case .httpErrors(let rate, let status, let routes, let tenants):
            return ["rate": .number(rate), "status": .integer(status)].merging(routeList(routes)) { a, _ in a }
                .merging(tenants.map { ["tenants": .array($0.sorted().map(JSONValue.string))] } ?? [:]) { a, _ in a }
        case .latency(let distribution, let rate, let routes):
            return distribution.parameters.merging(["rate": .number(rate)]) { a, _ in a }.merging(routeList(routes)) { a, _ in a }
        case .dbSlow(let milliseconds, let rate, let timeout):
            return ["sleep_ms": .integer(milliseconds), "rate": .number(rate)].merging(timeout.map { ["timeout_ms": .integer($0)] } ?? [:]) { a, _ in a }
        case .dbPoolLimit(let maximum):
            return ["max_connections": .integer(maximum)]
        case .cacheFlush(let pattern, let interval):
            var parameters: [String: JSONValue] = ["pattern": .string(pattern)]
            if let interval { parameters["interval_ms"] = .integer(Int(interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000)) }
            return parameters
        case .cacheBypass(let rate), .paymentDeclines(let rate), .processorErrors(let rate), .invoiceFailures(let rate):
            return ["rate": .number(rate)]
        case .notificationFailures(let rate, let channels):
            return ["rate": .number(rate), "channels": .array(channels.map(\.rawValue).sorted().map(JSONValue.string))]
        case .memoryBallast(let megabytes):
            return ["mb": .integer(megabytes)]
        case .cpuBurn(let share):
            return ["share": .number(share)]
        case .redisSlow(let milliseconds, let rate):
            return ["sleep_ms": .integer(milliseconds), "rate": .number(rate)]
        case .eventLoopBlock(let milliseconds):
            return ["block_ms": .integer(milliseconds)]
        case .fdLeak(let share, let perSecond):
            return ["share": .number(share), "per_second": .integer(perSecond)]
        }
    }
}

/// How long an injected delay lasts, in milliseconds.
public enum DelayDistribution: Sendable, Equatable {
    case fixed(milliseconds: Int)
    case uniform(minimum: Int, maximum: Int)
    /// Normal, cut off below 0 and above ``maximumMilliseconds``.
    case normal(mean: Int, standardDeviation: Int)
    /// Exponential, cut off above ``maximumMilliseconds``.
    case exponential(mean: Int)

    /// The longest delay any parameter or draw may ask for.
    public static let maximumMilliseconds = 60_000

    /// One delay drawn from the distribution.
    public func sample() -> Duration {
        let milliseconds: Double
        switch self {
        case .fixed(let value):
            milliseconds = Double(value)
        case .uniform(let minimum, let maximum):
            milliseconds = Double.random(in: Double(minimum)...Double(maximum))
        case .normal(let mean, let deviation):
            // Box-Muller.
            let u = Double.random(in: Double.leastNonzeroMagnitude..<1), v = Double.random(in: 0..<1)
            milliseconds = Double(mean) + Double(deviation) * (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        case .exponential(let mean):
            milliseconds = -Double(mean) * log(Double.random(in: Double.leastNonzeroMagnitude..<1))
        }
        return .microseconds(Int64(min(max(milliseconds, 0), Double(Self.maximumMilliseconds)) * 1000))
    }

    var parameters: [String: JSONValue] {
        switch self {
        case .fixed(let value): ["distribution": .string("fixed"), "delay_ms": .integer(value)]
        case .uniform(let minimum, let maximum): ["distribution": .string("uniform"), "min_ms": .integer(minimum), "max_ms": .integer(maximum)]
        case .normal(let mean, let deviation): ["distribution": .string("normal"), "mean_ms": .integer(mean), "stddev_ms": .integer(deviation)]
        case .exponential(let mean): ["distribution": .string("exponential"), "mean_ms": .integer(mean)]
        }
    }
}

/// One fault of a plan: what it does, and for how long.
public struct Fault: Sendable, Equatable {
    public var setting: FaultSetting
    /// After this long the fault clears itself; nil: until it is cleared.
    public var duration: Duration?
}

/// A whole fault plan, as `PUT /admin/faults` takes it: at most one fault of each kind.
public struct FaultPlan: Sendable, Equatable {
    public var faults: [FaultKind: Fault]

    /// The longest `duration_s` accepted: a day.
    static let maximumDurationSeconds = 86_400.0

    /// Reads and checks a plan: `{"duration_s"?: seconds, "faults": {kind: {parameters}}}`.
    /// - Throws: ``FaultPlanError`` naming the first field that is wrong.
    static func parse(_ body: JSONValue, for capabilities: FaultCapabilities) throws(FaultPlanError) -> FaultPlan {
        var top = try FieldReader(body, path: "")
        let defaultDuration = try top.duration()
        guard let faultsValue = top.take("faults") else {
            throw FaultPlanError("faults", "is required: an object of fault kinds and their parameters ({} for none)")
        }
        try top.finish(known: ["faults", "duration_s"])
        guard case .object(let entries) = faultsValue else {
            throw FaultPlanError("faults", "must be an object of fault kinds and their parameters, not \(faultsValue.kindDescription)")
        }
        var faults: [FaultKind: Fault] = [:]
        for (key, value) in entries.sorted(by: { $0.key < $1.key }) {
            guard let kind = FaultKind(rawValue: key) else {
                throw FaultPlanError("faults.\(key)", "is not a fault kind; the kinds are \(FaultKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            faults[kind] = try Fault.parse(kind, value, path: "faults.\(key)", capabilities: capabilities, defaultDuration: defaultDuration)
        }
        return FaultPlan(faults: faults)
    }
}

extension Fault {
    /// Reads the parameters of one fault of `kind` (the body of `PUT /admin/faults/{kind}`).
    static func parse(
        _ kind: FaultKind, _ value: JSONValue, path: String, capabilities: FaultCapabilities, defaultDuration: Duration? = nil
    ) throws(FaultPlanError) -> Fault {
        if let reason = capabilities.reasonUnsupported(kind) {
            throw FaultPlanError(path, "cannot be injected here: \(reason)")
        }
        var reader = try FieldReader(value, path: path)
        let duration = try reader.duration() ?? defaultDuration
        let setting: FaultSetting
        var known = ["duration_s"]
        switch kind {
        case .httpErrors:
            known += ["rate", "status", "routes", "tenants"]
            setting = .httpErrors(
                rate: try reader.rate(),
                status: try reader.integer("status", in: 500...599, unit: "an HTTP status") ?? 500,
                routes: try reader.routes(of: capabilities),
                tenants: try reader.tenants()
            )
        case .latency:
            let distribution: DelayDistribution
            let name = try reader.string("distribution") ?? "fixed"
            let range = 0...DelayDistribution.maximumMilliseconds
            switch name {
            case "fixed":
                known += ["delay_ms"]
                distribution = .fixed(milliseconds: try reader.required { (r) throws(FaultPlanError) in try r.integer("delay_ms", in: range) })
            case "uniform":
                known += ["min_ms", "max_ms"]
                let minimum = try reader.required { (r) throws(FaultPlanError) in try r.integer("min_ms", in: range) }
                let maximum = try reader.required { (r) throws(FaultPlanError) in try r.integer("max_ms", in: range) }
                guard minimum <= maximum else { throw FaultPlanError("\(path).max_ms", "must not be less than min_ms") }
                distribution = .uniform(minimum: minimum, maximum: maximum)
            case "normal":
                known += ["mean_ms", "stddev_ms"]
                distribution = .normal(
                    mean: try reader.required { (r) throws(FaultPlanError) in try r.integer("mean_ms", in: range) },
                    standardDeviation: try reader.required { (r) throws(FaultPlanError) in try r.integer("stddev_ms", in: range) }
                )
            case "exponential":
                known += ["mean_ms"]
                distribution = .exponential(mean: try reader.required { (r) throws(FaultPlanError) in try r.integer("mean_ms", in: 1...DelayDistribution.maximumMilliseconds) })
            default:
                throw FaultPlanError("\(path).distribution", "must be fixed, uniform, normal or exponential")
            }
            known += ["distribution", "rate", "routes"]
            setting = .latency(distribution, rate: try reader.rate(), routes: try reader.routes(of: capabilities))
        case .dbSlow:
            known += ["sleep_ms", "rate", "timeout_ms"]
            setting = .dbSlow(
                milliseconds: try reader.required { (r) throws(FaultPlanError) in try r.integer("sleep_ms", in: 1...DelayDistribution.maximumMilliseconds) },
                rate: try reader.rate(),
                timeoutMilliseconds: try reader.integer("timeout_ms", in: 1...DelayDistribution.maximumMilliseconds)
            )
        case .dbPoolLimit:
            known += ["max_connections"]
            setting = .dbPoolLimit(maximumConnections: try reader.required { (r) throws(FaultPlanError) in
                try r.integer("max_connections", in: 1...capabilities.maximumConnections, unit: "a number of connections (the pool holds \(capabilities.maximumConnections))")
            })
        case .cacheFlush:
            known += ["pattern", "interval_ms"]
            let pattern = try reader.string("pattern") ?? "*"
            guard (1...256).contains(pattern.utf8.count) else { throw FaultPlanError("\(path).pattern", "must be a Redis glob pattern of 1 to 256 bytes") }
            let interval = try reader.integer("interval_ms", in: 100...3_600_000)
            setting = .cacheFlush(pattern: pattern, interval: interval.map { .milliseconds($0) })
        case .cacheBypass:
            known += ["rate"]
            setting = .cacheBypass(rate: try reader.rate())
        case .paymentDeclines:
            known += ["rate"]
            setting = .paymentDeclines(rate: try reader.rate())
        case .processorErrors:
            known += ["rate"]
            setting = .processorErrors(rate: try reader.rate())
        case .invoiceFailures:
            known += ["rate"]
            setting = .invoiceFailures(rate: try reader.rate())
        case .notificationFailures:
            known += ["rate", "channels"]
            let rate = try reader.rate()
            var channels = Set(BusinessMetrics.NotificationType.allCases)
            if let names = try reader.strings("channels") {
                guard !names.isEmpty else { throw FaultPlanError("\(path).channels", "must name at least one channel") }
                channels = []
                for (index, name) in names.enumerated() {
                    guard let channel = BusinessMetrics.NotificationType(rawValue: name) else {
                        throw FaultPlanError("\(path).channels[\(index)]", "must be email, sms or webhook")
                    }
                    channels.insert(channel)
                }
            }
            setting = .notificationFailures(rate: rate, channels: channels)
        case .memoryBallast:
            known += ["mb"]
            let limit = capabilities.ballastLimitMegabytes
            setting = .memoryBallast(megabytes: try reader.required { (r) throws(FaultPlanError) in
                try r.integer("mb", in: 1...limit, unit: "a number of MiB (the ceiling is CLOUDBILL_FAULT_BALLAST_LIMIT_MB = \(limit))")
            })
        case .cpuBurn:
            known += ["share"]
            let share = try reader.required { (r) throws(FaultPlanError) in try r.number("share") }
            guard share > 0, share <= CPUBurner.maximumShare else {
                throw FaultPlanError("\(path).share", "must be a number of cores greater than 0 and at most \(Int(CPUBurner.maximumShare)) (above 1, spread over as many threads)")
            }
            setting = .cpuBurn(share: share)
        case .redisSlow:
            known += ["sleep_ms", "rate"]
            setting = .redisSlow(
                milliseconds: try reader.required { (r) throws(FaultPlanError) in
                    try r.integer("sleep_ms", in: 1...RedisSlowdown.maximumMilliseconds, unit: "a whole number of milliseconds (at most \(RedisSlowdown.maximumMilliseconds): Redis serves no one meanwhile)")
                },
                rate: try reader.rate()
            )
        case .eventLoopBlock:
            known += ["block_ms"]
            setting = .eventLoopBlock(milliseconds: try reader.required { (r) throws(FaultPlanError) in
                try r.integer("block_ms", in: 1...1000, unit: "a whole number of milliseconds, 1 to 1000")
            })
        case .fdLeak:
            known += ["share", "per_second"]
            let share = try reader.number("share") ?? 0.85
            guard share > 0, share <= 0.95 else {
                throw FaultPlanError("\(path).share", "must be a number greater than 0 and at most 0.95 (a share of the descriptor limit; the service needs the rest)")
            }
            setting = .fdLeak(
                share: share,
                perSecond: try reader.integer("per_second", in: 1...100_000, unit: "a whole number of descriptors a second") ?? 1000
            )
        }
        try reader.finish(known: known)
        return Fault(setting: setting, duration: duration)
    }
}

/// A fault plan that cannot be applied, and the field that says why.
struct FaultPlanError: Error, Equatable {
    /// The path of the field, as `faults.http_errors.rate`.
    let field: String
    let problem: String

    init(_ field: String, _ problem: String) {
        self.field = field
        self.problem = problem
    }

    var apiError: APIError {
        APIError(.badRequest, code: "invalid_fault_plan", field.isEmpty ? "The fault plan \(problem)." : "Field '\(field)' \(problem).")
    }
}

/// Reads the fields of one JSON object, each at most once, and refuses fields no one read.
struct FieldReader {
    let path: String
    private var remaining: [String: JSONValue]
    /// The key the last read asked for, for ``required(_:)``.
    private var lastKey = ""

    init(_ value: JSONValue, path: String) throws(FaultPlanError) {
        guard case .object(let fields) = value else {
            throw FaultPlanError(path, "must be an object, not \(value.kindDescription)")
        }
        self.path = path
        self.remaining = fields
    }

    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    mutating func take(_ key: String) -> JSONValue? {
        lastKey = key
        guard let value = remaining.removeValue(forKey: key), value != .null else { return nil }
        return value
    }

    /// Unwraps a parameter that has no default.
    mutating func required<T>(_ read: (inout FieldReader) throws(FaultPlanError) -> T?) throws(FaultPlanError) -> T {
        guard let value = try read(&self) else { throw FaultPlanError(field(lastKey), "is required") }
        return value
    }

    mutating func number(_ key: String) throws(FaultPlanError) -> Double? {
        guard let value = take(key) else { return nil }
        guard let number = value.number, number.isFinite else { throw FaultPlanError(field(key), "must be a number, not \(value.kindDescription)") }
        return number
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int>, unit: String = "a whole number of milliseconds") throws(FaultPlanError) -> Int? {
        guard let value = take(key) else { return nil }
        let problem = "must be \(unit) from \(range.lowerBound) to \(range.upperBound)"
        guard let number = value.number, number.rounded() == number, let integer = Int(exactly: number), range.contains(integer) else {
            throw FaultPlanError(field(key), problem)
        }
        return integer
    }

    /// A share of events, `rate` in [0, 1]; 1 when absent.
    mutating func rate() throws(FaultPlanError) -> Double {
        guard let rate = try number("rate") else { return 1 }
        guard (0...1).contains(rate) else { throw FaultPlanError(field("rate"), "must be a number from 0 to 1") }
        return rate
    }

    /// `duration_s`: seconds, greater than 0 and at most a day.
    mutating func duration() throws(FaultPlanError) -> Duration? {
        guard let seconds = try number("duration_s") else { return nil }
        guard seconds > 0, seconds <= FaultPlan.maximumDurationSeconds else {
            throw FaultPlanError(field("duration_s"), "must be a number of seconds greater than 0 and at most \(Int(FaultPlan.maximumDurationSeconds))")
        }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    mutating func string(_ key: String) throws(FaultPlanError) -> String? {
        guard let value = take(key) else { return nil }
        guard case .string(let text) = value else { throw FaultPlanError(field(key), "must be a string, not \(value.kindDescription)") }
        return text
    }

    mutating func strings(_ key: String) throws(FaultPlanError) -> [String]? {
        guard let value = take(key) else { return nil }
        guard case .array(let items) = value else { throw FaultPlanError(field(key), "must be an array of strings, not \(value.kindDescription)") }
        var strings: [String] = []
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item else { throw FaultPlanError("\(field(key))[\(index)]", "must be a string, not \(item.kindDescription)") }
            strings.append(text)
        }
        return strings
    }

    /// `tenants`: the tenants (as the `tenant_id` label shows them) whose requests a fault
    /// affects; nil (every tenant) when absent.
    mutating func tenants() throws(FaultPlanError) -> Set<String>? {
        guard let tenants = try strings("tenants") else { return nil }
        guard (1...100).contains(tenants.count) else {
            throw FaultPlanError(field("tenants"), "must name 1 to 100 tenants, or be left out for every tenant")
        }
        for (index, tenant) in tenants.enumerated() where !(1...128).contains(tenant.utf8.count) {
            throw FaultPlanError("\(field("tenants"))[\(index)]", "must be a tenant id of 1 to 128 bytes")
        }
        return Set(tenants)
    }

    /// `routes`: route templates of this service; nil (every route) when absent.
    mutating func routes(of capabilities: FaultCapabilities) throws(FaultPlanError) -> Set<String>? {
        guard let routes = try strings("routes") else { return nil }
        guard !routes.isEmpty else { throw FaultPlanError(field("routes"), "must name at least one route template, or be left out for every route") }
        for (index, route) in routes.enumerated() {
            if let known = capabilities.routes, !known.contains(route) {
                throw FaultPlanError(
                    "\(field("routes"))[\(index)]",
                    "names no route template of \(capabilities.service); its routes are \(known.sorted().joined(separator: ", "))"
                )
            }
        }
        return Set(routes)
    }

    /// Throws for the first field nothing read.
    func finish(known: [String]) throws(FaultPlanError) {
        if let unknown = remaining.keys.sorted().first {
            throw FaultPlanError(field(unknown), "is not a parameter here; expected \(known.joined(separator: ", "))")
        }
    }
}
