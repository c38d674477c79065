import Foundation
import Testing
@testable import loadgen

/// The HTML report from a short real-time run against the stub: one self-contained file.
@Suite(.serialized) struct HTMLReportTests {
    static let phases = [
        Phase(name: "baseline", duration: 1, shape: .constant(50)),
        Phase(name: "inject", duration: 1, shape: .constant(50), inject: [.service(service: "billing", kind: "latency", parameters: ["delay_ms": 100])]),
        Phase(name: "recover", duration: 1, shape: .constant(50), clearsFaults: true),
    ]

    static func checkSelfContained(_ html: String) {
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        // Nothing a browser would fetch: no URL at all (the gateway is named without its scheme).
        #expect(!html.contains("http://"))
        #expect(!html.contains("https://"))
        #expect(!html.contains("<script"))
        #expect(!html.contains("<link"))
        #expect(!html.contains("@import"))
        #expect(!html.contains("url("))
        #expect(!html.contains("src="))
        // One inline SVG per chart: rate, latency, errors.
        #expect(html.components(separatedBy: "<svg").count - 1 == 3)
        #expect(html.components(separatedBy: "</svg>").count - 1 == 3)
        for id in ["rate", "latency", "errors"] { #expect(html.contains("id=\"\(id)\"")) }
        #expect(html.contains("<polyline"))
        // The phases: a labelled band in each chart and a row in the table; the fault phase marked.
        for phase in phases { #expect(html.components(separatedBy: ">\(phase.name)").count - 1 >= 4, "phase \(phase.name)") }
        #expect(html.contains("inject (fault)"))
        #expect(html.contains("#fecaca"))
        #expect(html.contains("<table"))
        #expect(html.contains(">total<"))
    }

    @Test func aRunRendersASelfContainedReportWithAChartPerSeriesAndThePhases() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loadgen-html-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let rawPath = dir.appendingPathComponent("run.ndjson").path
        let scenario = LoadEngineTests.pingScenario(path: "/ping", phases: Self.phases)
        let writer = try RawRecordWriter(path: rawPath)
        let stub = StubServer()
        let (record, url) = try await stub.serve { url in
            writer.writeHeader(scenario: scenario, seed: 1, gatewayURL: url, settings: RunSettings())
            return (await LoadEngineTests.run(scenario, url: url, raw: writer), url)
        }
        writer.finish(interrupted: false)
        #expect(record.timeline.count >= 2)

        // From the live run.
        let summary = RunSummary(scenario: scenario, seed: 1, gatewayURL: url, record: record, alerts: [], faults: [], thresholds: [])
        let html = HTMLReport(summary: summary, phases: record.phases).render()
        Self.checkSelfContained(html)
        #expect(html.contains(HTMLReport.withoutScheme(url)))
        let bands = HTMLReport(summary: summary, phases: record.phases).bands
        #expect(bands.map(\.underFault) == [false, true, false])

        // From the raw file, through the real command: the timeline is rebuilt per second.
        let htmlPath = dir.appendingPathComponent("report.html").path
        let code = await LoadgenCommand.runMain(["report", rawPath, "--html", htmlPath])
        #expect(code == ExitStatus.passed)
        let fromRaw = try String(contentsOfFile: htmlPath, encoding: .utf8)
        Self.checkSelfContained(fromRaw)
        let rebuilt = try RawRun.read(path: rawPath).record.timeline
        #expect(rebuilt.reduce(0) { $0 + $1.sent } == 150)
        #expect(rebuilt.reduce(0) { $0 + $1.target } == 150)
        #expect(rebuilt.reduce(0) { $0 + $1.completed } == 150)
        #expect(rebuilt.contains { $0.p99Milliseconds > 0 })
        #expect(Set(rebuilt.map(\.phase)).isSuperset(of: ["baseline", "inject"]))
    }
}
