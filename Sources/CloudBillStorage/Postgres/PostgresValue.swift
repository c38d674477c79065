import Foundation

/// A Swift value that can be bound to a query parameter, in PostgreSQL's text format.
public protocol PostgresEncodable: Sendable {
    /// The value as PostgreSQL parses it from text (the form `'...'::type` would take).
    var postgresText: String { get }
}

/// A Swift value that can be decoded from a result column in PostgreSQL's text format.
public protocol PostgresDecodable: Sendable {
    /// Returns nil when `postgresText` is not a valid text form of this type.
    init?(postgresText: String)
}

public typealias PostgresCodable = PostgresEncodable & PostgresDecodable

extension String: PostgresCodable {
    public var postgresText: String { self }
    public init?(postgresText: String) { self = postgresText }
}

extension Substring: PostgresEncodable {
    public var postgresText: String { String(self) }
}

extension Int: PostgresCodable {
    public var postgresText: String { String(self) }
    public init?(postgresText: String) { self.init(postgresText, radix: 10) }
}

extension Int64: PostgresCodable {
    public var postgresText: String { String(self) }
    public init?(postgresText: String) { self.init(postgresText, radix: 10) }
}

extension Int32: PostgresCodable {
    public var postgresText: String { String(self) }
    public init?(postgresText: String) { self.init(postgresText, radix: 10) }
}

extension Int16: PostgresCodable {
    public var postgresText: String { String(self) }
    public init?(postgresText: String) { self.init(postgresText, radix: 10) }
}

extension Bool: PostgresCodable {
    public var postgresText: String { self ? "t" : "f" }
    public init?(postgresText: String) {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}

extension Double: PostgresCodable {
    /// PostgreSQL spells the special values `NaN`, `Infinity` and `-Infinity`.
    public var postgresText: String {
        if isNaN { return "NaN" }
        if isInfinite { return self < 0 ? "-Infinity" : "Infinity" }
        return description
    }

    public init?(postgresText: String) {
        switch postgresText {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default: self.init(postgresText)
        }
    }
}

extension UUID: PostgresCodable {
    public var postgresText: String { uuidString.lowercased() }
    public init?(postgresText: String) { self.init(uuidString: postgresText) }
}

extension Decimal: PostgresCodable {
    /// `numeric` values round-trip exactly; use it for money.
    public var postgresText: String { description }
    public init?(postgresText: String) {
        self.init(string: postgresText, locale: Locale(identifier: "en_US_POSIX"))
    }
}

/// `bytea`, in PostgreSQL's hex format (`\x0a1b...`).
extension Array: PostgresEncodable where Element == UInt8 {
    public var postgresText: String {
        let digits = Array<UInt8>("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(2 + count * 2)
        text.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "x")])
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension Array: PostgresDecodable where Element == UInt8 {
    public init?(postgresText: String) {
        let utf8 = Array<UInt8>(postgresText.utf8)
        guard utf8.count % 2 == 0, utf8.starts(with: [UInt8(ascii: "\\"), UInt8(ascii: "x")]) else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(utf8.count / 2 - 1)
        var index = 2
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self = bytes
    }
}

/// `timestamptz`: sessions run with `TimeZone=UTC` and `DateStyle=ISO`, so values arrive as
/// `2024-05-01 10:11:12.345678+00`; a `timestamp` without zone is read as UTC.
extension Date: PostgresCodable {
    public var postgresText: String {
        let milliseconds = (timeIntervalSince1970 * 1000).rounded()
        let seconds = Int64((milliseconds / 1000).rounded(.down))
        let fraction = Int64(milliseconds) - seconds * 1000
        let days = Int64((Double(seconds) / 86_400).rounded(.down))
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = Self.civil(fromDays: days)
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2)) \(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(fraction, 3))+00"
    }

    public init?(postgresText: String) {
        // YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]|-HH[:MM]]
        let utf8 = Array(postgresText.utf8)
        guard utf8.count >= 19, utf8[4] == UInt8(ascii: "-"), utf8[10] == UInt8(ascii: " ") else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            guard range.upperBound <= utf8.count else { return nil }
            var value: Int64 = 0
            for c in utf8[range] {
                guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(c - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < utf8.count, utf8[index] == UInt8(ascii: ".") {
            var scale = 0.1
            index += 1
            while index < utf8.count, utf8[index] >= UInt8(ascii: "0"), utf8[index] <= UInt8(ascii: "9") {
                fraction += Double(utf8[index] - UInt8(ascii: "0")) * scale
                scale /= 10
                index += 1
            }
        }
        var offsetSeconds: Int64 = 0
        if index < utf8.count {
            let sign: Int64 = utf8[index] == UInt8(ascii: "-") ? -1 : 1
            guard utf8[index] == UInt8(ascii: "+") || utf8[index] == UInt8(ascii: "-"),
                  let hours = number(index + 1..<index + 3) else { return nil }
            var minutes: Int64 = 0
            if index + 3 < utf8.count {
                guard utf8[index + 3] == UInt8(ascii: ":"), let m = number(index + 4..<index + 6) else { return nil }
                minutes = m
            }
            offsetSeconds = sign * (hours * 3600 + minutes * 60)
        }
        let days = Self.days(fromCivil: year, month, day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        self.init(timeIntervalSince1970: Double(seconds) + fraction)
    }

    // Howard Hinnant's days_from_civil and civil_from_days (proleptic Gregorian calendar).
    private static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
