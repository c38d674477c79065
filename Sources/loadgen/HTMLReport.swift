import Foundation

/// The self-contained HTML report (`--html`): one file, no external URL (no script, font,
/// style sheet or image is fetched), inline SVG charts over time of target vs achieved
/// rate, latency p50/p99 per second (from the intended time) and errors per second, with
/// the phases as labelled bands (phases under a fault shaded red), then the per-phase table.
///
/// It is drawn from the summary's per-second timeline (one point per second of the run,
/// so its size grows with the run's length, not with the number of requests) and the
/// phases' start and end times.
struct HTMLReport {
    /// A phase as a band on the time axis.
    struct Band: Equatable {
        let name: String
        let start: Double
        let end: Double
        /// True while a fault the scenario injected is in force (from an inject phase up
        /// to the phase that clears faults).
        let underFault: Bool
        let detail: String
    }

    let summary: RunSummary
    let bands: [Band]

    init(summary: RunSummary, phases: [PhaseRun]) {
        self.summary = summary
        var underFault = false
        var bands: [Band] = []
        for run in phases {
            if run.phase.clearsFaults { underFault = false }
            if !run.phase.inject.isEmpty { underFault = true }
            var notes = run.phase.inject.map { "inject \($0.description)" }
            if run.phase.clearsFaults { notes.append("clear faults") }
            bands.append(Band(name: run.phase.name, start: run.start, end: run.end, underFault: underFault, detail: notes.joined(separator: "; ")))
        }
        self.bands = bands
    }

    func write(to path: String) throws {
        try Data(render().utf8).write(to: URL(fileURLWithPath: path))
    }

    func render() -> String {
        let timeline = summary.timeline
        let xMax = max(bands.last?.end ?? 0, Double(timeline.last?.second ?? 0), 1)
        // A point covers the second that ends at `second`: draw it at the middle.
        func points(_ value: (TimelinePoint) -> Double) -> [(Double, Double)] {
            timeline.map { (Double($0.second) - 0.5, value($0)) }
        }
        let rate = Self.chart(
            title: "Rate: target vs achieved (requests/s)", unit: "req/s", xMax: xMax, bands: bands, alerts: summary.alerts,
            series: [
                Series(name: "completed", color: "#16a34a", points: points { Double($0.completed) }),
                Series(name: "achieved (sent)", color: "#2563eb", points: points { Double($0.sent) }),
                Series(name: "target (due)", color: "#111827", dashed: true, points: points { Double($0.target) }),
            ] + shardSeries())
        let latency = Self.chart(
            title: "Latency from the intended time, per second (ms)", unit: "ms", xMax: xMax, bands: bands, alerts: summary.alerts,
            series: [
                Series(name: "p50", color: "#2563eb", points: points(\.p50Milliseconds)),
                Series(name: "p99", color: "#dc2626", points: points(\.p99Milliseconds)),
            ])
        let errors = Self.chart(
            title: "Errors and drops per second", unit: "req/s", xMax: xMax, bands: bands, alerts: summary.alerts,
            series: [
                Series(name: "errors", color: "#dc2626", bars: true, points: points { Double($0.errors) }),
                Series(name: "dropped (in-flight cap)", color: "#f59e0b", points: points { Double($0.dropped) }),
            ])

        let gateway = Self.withoutScheme(summary.gatewayURL)
        var html = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <title>loadgen: \(htmlEscape(summary.scenario))</title>
        <style>
        body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#111827;background:#fff}
        h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 6px}
        .meta{color:#4b5563;font-size:13px} .chart{margin:10px 0}
        table{border-collapse:collapse;font-size:11px} th,td{border:1px solid #d1d5db;padding:3px 6px;text-align:right}
        th{background:#f3f4f6} td.l,th.l{text-align:left} tr.total td{font-weight:bold}
        .pass{color:#15803d;font-weight:bold} .fail{color:#b91c1c;font-weight:bold}
        ul{font-size:13px;margin:4px 0}
        </style></head><body>
        <h1>loadgen: \(htmlEscape(summary.scenario))</h1>
        <div class="meta">seed \(htmlEscape(summary.seed)) · gateway \(htmlEscape(gateway)) · started \(htmlEscape(summary.startedAt)) · result
        <span class="\(summary.result == .passed ? "pass" : "fail")">\(htmlEscape(summary.result.rawValue)) (exit \(summary.exitCode))</span></div>
        <div class="meta">Shaded bands are the phases; red ones are under an injected fault. Latency = completed − intended (includes queueing behind slow answers).</div>

        """
        html += "<div class=\"chart\" id=\"rate\">\(rate)</div>\n"
        html += "<div class=\"chart\" id=\"latency\">\(latency)</div>\n"
        html += "<div class=\"chart\" id=\"errors\">\(errors)</div>\n"
        html += phaseTable()
        html += shardTable()
        html += eventLists()
        html += "</body></html>\n"
        return html
    }

    // MARK: - Table and lists

    private func phaseTable() -> String {
        let headers = ["phase", "shape", "time", "target", "sent", "target rate", "achieved rate", "achieved", "dropped", "errors", "error %",
                       "p50", "p90", "p95", "p99", "p99.9", "max", "svc p99", "lag p99", "status classes", "faults"]
        var rows = "<h2>Phases</h2>\n<div style=\"overflow-x:auto\"><table><thead><tr>"
        for (column, header) in headers.enumerated() { rows += "<th\(column < 2 || column >= 19 ? " class=\"l\"" : "")>\(htmlEscape(header))</th>" }
        rows += "</tr></thead><tbody>\n"
        for phase in summary.phases + [summary.total] {
            let classes = phase.results.keys.sorted().map { "\($0) \(phase.results[$0]!)" }.joined(separator: ", ")
            let cells = [
                formatDuration(phase.actualSeconds), String(phase.targetCount), String(phase.sent),
                String(format: "%.1f/s", phase.targetRate), String(format: "%.1f/s", phase.achievedRate), String(format: "%.1f%%", phase.achievedRatio * 100),
                String(phase.dropped), String(phase.errors), String(format: "%.2f%%", phase.errorRatio * 100),
                Self.ms(phase.latency.p50), Self.ms(phase.latency.p90), Self.ms(phase.latency.p95), Self.ms(phase.latency.p99),
                Self.ms(phase.latency.p999), Self.ms(phase.latency.max), Self.ms(phase.serviceTime.p99), Self.ms(phase.sendLag.p99),
            ]
            rows += "<tr\(phase.name == "total" && phase.shape.isEmpty ? " class=\"total\"" : "")><td class=\"l\">\(htmlEscape(phase.name))</td><td class=\"l\">\(htmlEscape(phase.shape))</td>"
            rows += cells.map { "<td>\(htmlEscape($0))</td>" }.joined()
            rows += "<td class=\"l\">\(htmlEscape(classes))</td><td class=\"l\">\(htmlEscape(phase.faults.joined(separator: "; ")))</td></tr>\n"
        }
        rows += "</tbody></table></div>\n"
        return rows
    }

    /// A merged run: each shard's achieved rate per second, drawn in the rate chart.
    private func shardSeries() -> [Series] {
        let colors = ["#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c", "#4b5563"]
        return (summary.shards ?? []).enumerated().map { number, shard in
            Series(name: "shard \(shard.shard) sent", color: colors[number % colors.count], dashed: true,
                   points: shard.sentPerSecond.enumerated().map { (Double($0.offset) + 0.5, Double($0.element)) })
        }
    }

    private func shardTable() -> String {
        guard let shards = summary.shards, !shards.isEmpty else { return "" }
        var rows = "<h2>Shards</h2>\n<table><thead><tr><th class=\"l\">shard</th><th>sent</th><th>achieved rate</th><th>errors</th></tr></thead><tbody>\n"
        for shard in shards {
            rows += "<tr><td class=\"l\">\(htmlEscape(shard.shard))</td><td>\(shard.sent)</td><td>\(String(format: "%.1f/s", shard.achievedRate))</td><td>\(shard.errors)</td></tr>\n"
        }
        return rows + "</tbody></table>\n"
    }

    private func eventLists() -> String {
        var html = ""
        if !summary.thresholds.isEmpty {
            html += "<h2>Thresholds</h2><ul>\n"
            for verdict in summary.thresholds {
                let observed = verdict.observed.map { String(format: "%.4g", $0) } ?? "n/a"
                html += "<li><span class=\"\(verdict.passed ? "pass" : "fail")\">\(verdict.passed ? "PASS" : "FAIL")</span> \(htmlEscape(verdict.threshold)) (observed \(htmlEscape(observed)))</li>\n"
            }
            html += "</ul>\n"
        }
        if !summary.faults.isEmpty {
            html += "<h2>Faults</h2><ul>\n"
            for event in summary.faults {
                html += "<li>\(String(format: "%.1fs", event.at)) \(event.succeeded ? "ok" : "<span class=\"fail\">FAILED</span>") \(htmlEscape(Self.withoutScheme(event.action)))"
                    + (event.succeeded ? "" : " (\(htmlEscape(Self.withoutScheme(event.detail))))") + "</li>\n"
            }
            html += "</ul>\n"
        }
        if !summary.expectedAlerts.isEmpty || !summary.alerts.isEmpty {
            html += "<h2>Alerts</h2><ul>\n"
            html += "<li>expected: \(htmlEscape(summary.expectedAlerts.joined(separator: ", ")))</li>\n"
            for alert in summary.alerts {
                let fired = alert.firingAt.map { String(format: "fired at %.0fs", $0) } ?? "did not fire"
                let detect = alert.detectSeconds.map { String(format: " (detect %.0fs)", $0) } ?? ""
                let resolved = alert.resolvedAt.map { String(format: ", resolved at %.0fs", $0) } ?? ""
                let resolve = alert.resolveSeconds.map { String(format: " (resolve %.0fs)", $0) } ?? ""
                html += "<li>\(htmlEscape(alert.name)): \(fired)\(detect)\(resolved)\(resolve)</li>\n"
            }
            html += "</ul>\n"
        }
        return html
    }

    // MARK: - Charts

    struct Series {
        let name: String
        let color: String
        var dashed = false
        var bars = false
        let points: [(Double, Double)]
    }

    static let width = 1100.0
    static let height = 280.0
    static let left = 64.0, right = 16.0, top = 44.0, bottom = 40.0

    static func chart(title: String, unit: String, xMax: Double, bands: [Band], alerts: [AlertObservation], series: [Series]) -> String {
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let yMax = niceCeiling(series.flatMap { $0.points.map(\.1) }.max() ?? 0)
        func x(_ seconds: Double) -> Double { left + min(max(seconds, 0), xMax) / xMax * plotWidth }
        func y(_ value: Double) -> Double { top + plotHeight - min(max(value, 0), yMax) / yMax * plotHeight }
        func f(_ value: Double) -> String { String(format: "%.1f", value) }

        var svg = "<svg viewBox=\"0 0 \(f(width)) \(f(height))\" width=\"\(f(width))\" height=\"\(f(height))\" style=\"max-width:100%;height:auto\" role=\"img\" aria-label=\"\(htmlEscape(title))\" "
            + "font-family=\"system-ui,sans-serif\" font-size=\"11\">\n"
        svg += "<text x=\"\(f(left))\" y=\"14\" font-size=\"13\" font-weight=\"bold\">\(htmlEscape(title))</text>\n"
        // Phase bands, labelled at the top of the plot.
        for (index, band) in bands.enumerated() {
            let x0 = x(band.start), x1 = x(band.end)
            let fill = band.underFault ? "#fecaca" : (index % 2 == 0 ? "#f3f4f6" : "#e5e7eb")
            svg += "<g class=\"phase\"><title>\(htmlEscape(band.name))\(band.detail.isEmpty ? "" : ": " + htmlEscape(band.detail)) (\(f(band.start))s to \(f(band.end))s)</title>"
            svg += "<rect x=\"\(f(x0))\" y=\"\(f(top))\" width=\"\(f(max(x1 - x0, 0.5)))\" height=\"\(f(plotHeight))\" fill=\"\(fill)\" fill-opacity=\"0.8\"/>"
            svg += "<text x=\"\(f(x0 + 3))\" y=\"\(f(top + 12))\" fill=\"\(band.underFault ? "#991b1b" : "#374151")\">\(htmlEscape(band.name))\(band.underFault ? " (fault)" : "")</text></g>\n"
        }
        // Grid and axes.
        for step in 0...4 {
            let value = yMax * Double(step) / 4
            svg += "<line x1=\"\(f(left))\" x2=\"\(f(left + plotWidth))\" y1=\"\(f(y(value)))\" y2=\"\(f(y(value)))\" stroke=\"#d1d5db\" stroke-width=\"0.5\"/>"
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(y(value) + 4))\" text-anchor=\"end\">\(htmlEscape(formatAxis(value)))</text>\n"
        }
        let xStep = niceStep(xMax / 12)
        var tick = 0.0
        while tick <= xMax + 1e-9 {
            svg += "<line x1=\"\(f(x(tick)))\" x2=\"\(f(x(tick)))\" y1=\"\(f(top + plotHeight))\" y2=\"\(f(top + plotHeight + 4))\" stroke=\"#6b7280\"/>"
            svg += "<text x=\"\(f(x(tick)))\" y=\"\(f(top + plotHeight + 16))\" text-anchor=\"middle\">\(htmlEscape(formatDuration(tick)))</text>\n"
            tick += xStep
        }
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" fill=\"none\" stroke=\"#6b7280\"/>\n"
        svg += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(height - 6))\" text-anchor=\"middle\">time since start</text>"
        svg += "<text x=\"14\" y=\"\(f(top + plotHeight / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(f(top + plotHeight / 2)))\">\(htmlEscape(unit))</text>\n"
        // Alerts firing, as vertical lines.
        for alert in alerts {
            if let firing = alert.firingAt, firing <= xMax {
                svg += "<line x1=\"\(f(x(firing)))\" x2=\"\(f(x(firing)))\" y1=\"\(f(top))\" y2=\"\(f(top + plotHeight))\" stroke=\"#7c3aed\" stroke-dasharray=\"2 2\"><title>\(htmlEscape(alert.name)) firing</title></line>"
                svg += "<text x=\"\(f(x(firing) + 3))\" y=\"\(f(top + 26))\" fill=\"#7c3aed\">\(htmlEscape(alert.name)) fired</text>\n"
            }
        }
        // Series.
        let barWidth = max(plotWidth / xMax * 0.8, 1)
        for item in series {
            if item.bars {
                svg += "<g class=\"series\" fill=\"\(item.color)\"><title>\(htmlEscape(item.name))</title>"
                for (second, value) in item.points where value > 0 {
                    svg += "<rect x=\"\(f(x(second) - barWidth / 2))\" y=\"\(f(y(value)))\" width=\"\(f(barWidth))\" height=\"\(f(top + plotHeight - y(value)))\"/>"
                }
                svg += "</g>\n"
            } else if !item.points.isEmpty {
                let path = item.points.map { "\(f(x($0.0))),\(f(y($0.1)))" }.joined(separator: " ")
                svg += "<polyline class=\"series\" fill=\"none\" stroke=\"\(item.color)\" stroke-width=\"1.8\"\(item.dashed ? " stroke-dasharray=\"6 3\"" : "") points=\"\(path)\"><title>\(htmlEscape(item.name))</title></polyline>\n"
            }
        }
        // Legend, top right.
        var legendX = left + plotWidth
        for item in series.reversed() {
            let labelWidth = Double(item.name.count) * 6.2 + 26
            legendX -= labelWidth
            svg += "<rect x=\"\(f(legendX))\" y=\"22\" width=\"14\" height=\"8\" fill=\"\(item.color)\"/>"
            svg += "<text x=\"\(f(legendX + 18))\" y=\"30\">\(htmlEscape(item.name))</text>\n"
        }
        svg += "</svg>"
        return svg
    }

    /// 1, 2 or 5 × 10^k at or above `value` (and 1 for nothing to show).
    static func niceCeiling(_ value: Double) -> Double {
        guard value > 0, value.isFinite else { return 1 }
        let magnitude = pow(10, floor(log10(value)))
        for factor in [1.0, 2, 2.5, 5, 10] where factor * magnitude >= value { return factor * magnitude }
        return 10 * magnitude
    }

    /// A tick spacing for a time axis, in seconds.
    static func niceStep(_ value: Double) -> Double {
        for step in [1.0, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600] where step >= value { return step }
        return 3600 * (value / 3600).rounded(.up)
    }

    static func formatAxis(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: value < 10 ? "%.2f" : "%.1f", value)
    }

    static func ms(_ value: Double) -> String {
        value >= 1000 ? String(format: "%.2fs", value / 1000) : String(format: "%.1fms", value)
    }

    /// `http://127.0.0.1:8080` → `127.0.0.1:8080`, so the file names no URL a browser could follow.
    static func withoutScheme(_ text: String) -> String {
        text.replacingOccurrences(of: "https://", with: "").replacingOccurrences(of: "http://", with: "")
    }
}

/// HTML-escapes text and attribute values.
func htmlEscape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for character in text {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(character)
        }
    }
    return out
}
