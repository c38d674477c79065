import CloudBillKit
import CloudBillTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Requests no well-behaved client sends must get a clear 4xx and create no series.
@Suite struct BadInputTests {
    /// The set of series in a scrape, values ignored.
    private func seriesKeys(_ metrics: Exposition) -> Set<String> {
        Set(metrics.samples.map(seriesKey))
    }

    private func seriesKey(_ sample: Exposition.Sample) -> String {
        sample.name + "{" + sample.labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",") + "}"
    }

    @Test(arguments: FleetService.allCases)
    func hostileRequestsCreateNoNewSeries(_ service: FleetService) async throws {
        try await withLiveService(service) { client in
            let port = try #require(client.port)
            // Warm up the one series unmatched requests share, and the health series.
            try await client.execute(uri: "/not-here", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/health", method: .get) { _ in }
            let before = seriesKeys(try await scrape(client).0)

            // Unknown paths, every one different.
            for _ in 0..<20 {
                try await client.execute(uri: "/\(UUID().uuidString)/\(Int.random(in: 0...999_999))", method: .get) { response in
                    #expect(response.status == .notFound)
                    #expect(String(buffer: response.body).contains("\"error\":\"not_found\""))
                }
            }
            // Random tenant headers without the gateway's secret.
            for _ in 0..<20 {
                let headers: HTTPFields = [InternalIdentity.tenantHeader: "t\(UInt32.random(in: 0...UInt32.max))"]
                try await client.execute(uri: "/health", method: .get, headers: headers) { #expect($0.status == .ok) }
                try await client.execute(uri: "/not-here", method: .get, headers: headers) { #expect($0.status == .notFound) }
            }
            // A header far over the parser's limit.
            let huge = Array("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 200_000))\r\n\r\n".utf8)
            let hugeStatus = RawHTTP.status(of: try await RawHTTP.exchange(huge, port: port))
            #expect(hugeStatus.map { (400..<500).contains($0) } == true, "oversized header got \(String(describing: hugeStatus))")
            // A header line with no colon, and a request line that is not HTTP.
            for malformed in ["GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", "\u{01}\u{02} nonsense\r\n\r\n"] {
                let status = RawHTTP.status(of: try await RawHTTP.exchange(Array(malformed.utf8), port: port))
                #expect(status.map { (400..<500).contains($0) } == true, "malformed request got \(String(describing: status))")
            }

            let after = try await scrape(client).0
            // The service's background work (janitors, reconcilers, outbox relays) may make
            // its first queries meanwhile: those series are the fixed operations of work no
            // request is attributed to. Anything else new came from the hostile requests.
            let background: Set<String> = ["db_query_duration_seconds_bucket", "db_query_duration_seconds_sum", "db_query_duration_seconds_count"]
            let fresh = after.samples.filter { !before.contains(seriesKey($0)) }
            let unexplained = fresh.filter { !(background.contains($0.name) && $0["tenant_id"] == "anonymous") }
            #expect(unexplained.isEmpty, "new series: \(unexplained.map(\.name))")
            #expect(!fresh.contains { $0.labels.contains { $0.1.hasPrefix("t") && $0.1.dropFirst().allSatisfy(\.isNumber) } })
        }
    }
}
