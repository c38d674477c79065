/// A parsed text exposition, for assertions on what a scrape shows.
public struct Exposition {
    public struct Sample: Equatable {
        public let name: String
        public let labels: [(String, String)]
        public let value: Double

        public static func == (a: Sample, b: Sample) -> Bool {
            a.name == b.name && a.value == b.value && a.labels.elementsEqual(b.labels, by: { $0 == $1 })
        }

        public subscript(label: String) -> String? { labels.first { $0.0 == label }?.1 }
        public var labelNames: [String] { labels.map(\.0) }
    }

    public var types: [String: String] = [:]
    public var help: [String: String] = [:]
    public var samples: [Sample] = []

    public init(_ text: String) {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ")
                types[String(parts[0])] = String(parts[1])
            } else if line.hasPrefix("# HELP ") {
                let rest = line.dropFirst(7)
                let space = rest.firstIndex(of: " ") ?? rest.endIndex
                help[String(rest[..<space])] = String(rest[space...].dropFirst())
            } else if !line.hasPrefix("#"), let sample = Self.parseSample(Substring(line)) {
                samples.append(sample)
            }
        }
    }

    static func parseSample(_ line: Substring) -> Sample? {
        var labels: [(String, String)] = []
        let name: Substring
        var rest: Substring
        if let brace = line.firstIndex(of: "{") {
            name = line[..<brace]
            rest = line[line.index(after: brace)...]
            while !rest.hasPrefix("}") {
                guard let eq = rest.firstIndex(of: "=") else { return nil }
                let key = String(rest[..<eq])
                rest = rest[rest.index(eq, offsetBy: 2)...]  // skip ="
                var value = ""
                var escaped = false
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if escaped { value.append(c == "n" ? "\n" : c); escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { break } else { value.append(c) }
                }
                labels.append((key, value))
                if rest.hasPrefix(",") { rest = rest.dropFirst() }
            }
            rest = rest.dropFirst()
        } else {
            guard let space = line.firstIndex(of: " ") else { return nil }
            name = line[..<space]
            rest = line[space...]
        }
        guard let value = Double(rest.trimmingPrefix(" ").split(separator: " ").first ?? "") else { return nil }
        return Sample(name: String(name), labels: labels, value: value)
    }

    /// Samples of a family, histograms' `_bucket`, `_sum` and `_count` series included.
    public func samples(of family: String) -> [Sample] {
        samples.filter { $0.name == family || $0.name == family + "_bucket" || $0.name == family + "_sum" || $0.name == family + "_count" }
    }

    public func value(_ name: String, _ labels: [String: String]) -> Double? {
        samples.first { sample in
            sample.name == name && labels.allSatisfy { sample[$0.key] == $0.value }
        }?.value
    }
}
