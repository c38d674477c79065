import CloudBillKit
import Testing

/// SHA-256 (libcrypto) against FIPS 180-4's examples, and the comparisons built on it.
@Suite struct SecretsTests {
    @Test func digestsAreFIPSExamples() {
        #expect(Secrets.sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Secrets.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Secrets.sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Parts are hashed as one text.
        #expect(Secrets.sha256Hex("a", "", "bc") == Secrets.sha256Hex("abc"))
        #expect(SHA256Digest.hash(Array("abc".utf8)) == SHA256Digest.hash("abc"))
        #expect(SHA256Digest.hash("abc").bytes.count == 32)
        #expect(Set([SHA256Digest.hash("a"), SHA256Digest.hash("a"), SHA256Digest.hash("b")]).count == 2)
    }

    @Test func secretsCompareEqualOnlyWhenEqual() {
        #expect(Secrets.constantTimeEquals("s3cret", "s3cret"))
        #expect(!Secrets.constantTimeEquals("s3cret", "s3creT"))
        #expect(!Secrets.constantTimeEquals("s3cret", "s3cret-longer"))
        #expect(!Secrets.constantTimeEquals("", "x"))
    }
}
