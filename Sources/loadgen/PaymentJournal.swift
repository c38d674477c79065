import Foundation
import Synchronization

/// Appends every payment the gateway acknowledged (a 2xx answer with an id) to a file,
/// one `payment_id<TAB>status` line each, so that a harness can check afterwards that
/// each of them is in the database (`--acknowledged-payments`).
final class PaymentJournal: Sendable {
    /// Guards the file handle: many requests complete at once.
    private let handle: Mutex<FileHandle>

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw ConfigurationError(field: "--acknowledged-payments", message: "cannot create \(path)")
        }
        handle = Mutex(try FileHandle(forWritingTo: URL(fileURLWithPath: path)))
    }

    func record(id: String, status: String) {
        // Ids come from the service's JSON answer: keep the line format unambiguous.
        guard !id.contains(where: { $0 == "\t" || $0 == "\n" }) else { return }
        let line = Data("\(id)\t\(status)\n".utf8)
        handle.withLock { $0.write(line) }
    }

    func close() { handle.withLock { try? $0.close() } }
}
