import CLibCrypto

/// A SHA-256 digest (FIPS 180-4), computed by the system's OpenSSL libcrypto: libpq links it
/// already, so the fleet carries one implementation of it rather than a second copy built
/// from source. Hashable, so a digest can key a dictionary in place of the secret it hashes.
public struct SHA256Digest: Hashable, Sendable, CustomStringConvertible {
    // The 32 bytes as four words: hashing and comparing them costs four operations.
    private let words: (UInt64, UInt64, UInt64, UInt64)

    /// The digest of `bytes`.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> SHA256Digest {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { out in
            var length: UInt32 = 0
            // Fails only when libcrypto cannot allocate its context: nothing can go on then.
            let done = EVP_Digest(bytes.baseAddress, bytes.count, out.baseAddress?.assumingMemoryBound(to: UInt8.self), &length, EVP_sha256(), nil)
            precondition(done == 1 && length == 32, "libcrypto's SHA-256 failed")
        }
        return SHA256Digest(words: words)
    }

    /// The digest of `bytes`.
    public static func hash(_ bytes: some Collection<UInt8>) -> SHA256Digest {
        if let digest = bytes.withContiguousStorageIfAvailable({ hash(UnsafeRawBufferPointer($0)) }) { return digest }
        return Array(bytes).withUnsafeBytes { hash($0) }
    }

    /// The digest of `text`'s UTF-8 bytes.
    public static func hash(_ text: String) -> SHA256Digest {
        var text = text
        return text.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }

    private init(words: (UInt64, UInt64, UInt64, UInt64)) {
        self.words = words
    }

    /// The 32 bytes, in order.
    public var bytes: [UInt8] {
        withUnsafeBytes(of: words) { Array($0) }
    }

    /// Lowercase hex.
    public var description: String {
        Secrets.hex(bytes)
    }

    public static func == (a: SHA256Digest, b: SHA256Digest) -> Bool {
        a.words == b.words
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}
