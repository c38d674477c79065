import Foundation
import Testing
@testable import loadgen

@Suite struct FaultInjectorTests {
    static func script(_ body: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loadgen-stack-\(UInt32.random(in: 0...UInt32.max)).sh").path
        try ("#!/bin/sh\n" + body).write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    /// `scripts/stack start postgres` leaves a daemon behind that inherited the script's
    /// output: the call must still end when the script does, with its exit status and output.
    @Test func aStackCommandThatLeavesADaemonBehindStillReturnsItsStatusAndOutput() throws {
        let path = try Self.script("sleep 20 &\necho \"started $1 $2\"\nexit 3\n")
        defer { unlink(path) }
        let began = ContinuousClock.now
        let (succeeded, detail) = FaultInjector.runStack(path, ["start", "postgres"])
        #expect(ContinuousClock.now - began < .seconds(10))
        #expect(!succeeded)
        #expect(detail.contains("exit 3") && detail.contains("started start postgres"))

        let ok = try Self.script("echo done\n")
        defer { unlink(ok) }
        let (fine, text) = FaultInjector.runStack(ok, ["stop", "redis"])
        #expect(fine && text.contains("exit 0 done"))
        #expect(!FaultInjector.runStack("/nonexistent/stack", ["stop", "redis"]).0)
    }

    @Test func theJournalKeepsEveryAcknowledgedPaymentOnItsOwnLine() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loadgen-payments-\(UInt32.random(in: 0...UInt32.max)).tsv").path
        defer { unlink(path) }
        let journal = try PaymentJournal(path: path)
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<200 { group.addTask { journal.record(id: "p\(index)", status: index % 2 == 0 ? "succeeded" : "failed") } }
        }
        journal.record(id: "bad\tid", status: "succeeded")
        journal.close()
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 200)
        #expect(Set(lines.map { $0.split(separator: "\t")[0] }) == Set((0..<200).map { "p\($0)" }))
        #expect(throws: ConfigurationError.self) { try PaymentJournal(path: "/nonexistent/dir/payments.tsv") }
    }
}
