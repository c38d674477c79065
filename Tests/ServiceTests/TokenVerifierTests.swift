import CloudBillKit
@testable import Gateway
import Testing

/// The gateway's memory of verified tokens stays bounded without forgetting the busy ones.
@Suite struct TokenVerifierTests {
    @Test func aFullCacheDropsExpiredGrantsFirst() {
        let now = ContinuousClock.now
        var grants: [TokenVerifier.Key: TokenVerifier.Grant] = [:]
        for index in 0..<100 {
            let validUntil = index < 30 ? now - .seconds(1) : now + .seconds(5)
            grants[TokenVerifier.key("token-\(index)")] = .init(tenant: "t\(index)", validUntil: validUntil)
        }
        TokenVerifier.evict(&grants, now: now, capacity: 100)
        #expect(grants.count == 70)
        #expect(grants[TokenVerifier.key("token-29")] == nil)
        #expect(grants[TokenVerifier.key("token-30")]?.tenant == "t30")
    }

    @Test func aCacheFullOfLiveGrantsDropsTheTenthThatExpiresSoonest() {
        let now = ContinuousClock.now
        var grants: [TokenVerifier.Key: TokenVerifier.Grant] = [:]
        for index in 0..<100 {
            grants[TokenVerifier.key("token-\(index)")] = .init(tenant: "t\(index)", validUntil: now + .milliseconds(100 + index))
        }
        TokenVerifier.evict(&grants, now: now, capacity: 100)
        #expect(grants.count == 90)
        #expect((0..<10).allSatisfy { grants[TokenVerifier.key("token-\($0)")] == nil })
        #expect((10..<100).allSatisfy { grants[TokenVerifier.key("token-\($0)")] != nil })
    }

    @Test func tokensAreKeyedByTheirSHA256() {
        // FIPS 180-4's example "abc".
        #expect(TokenVerifier.key("abc").description == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(TokenVerifier.key("abc") != TokenVerifier.key("abd"))
    }
}
