import CloudBillKit
import Foundation
import Testing

/// Secrets are never silent defaults, and tenant webhooks never reach inside.
@Suite struct ConfigurationHardeningTests {
    private func configuration(_ environment: [String: String], demo: Bool = false) throws -> ServiceConfiguration {
        let options = try ServiceOptions.parse(demo ? ["--demo"] : [])
        return try ServiceConfiguration(environment: environment, defaultPort: 3001, overrides: options)
    }

    private let secrets = ["CLOUDBILL_INTERNAL_TOKEN": "internal-secret-0123456789", "CLOUDBILL_ADMIN_TOKEN": "admin-secret-0123456789"]

    @Test func missingOrPublishedSecretsRefuseToStartOutsideDemoMode() throws {
        #expect(throws: ConfigurationError.self) { try configuration([:]) }
        #expect(throws: ConfigurationError.self) { try configuration(["CLOUDBILL_INTERNAL_TOKEN": "internal-secret-0123456789"]) }
        for (name, demoValue) in [("CLOUDBILL_INTERNAL_TOKEN", "cloudbill-demo-internal-token"), ("CLOUDBILL_ADMIN_TOKEN", "cloudbill-demo-admin-token")] {
            var environment = secrets
            environment[name] = demoValue
            do {
                _ = try configuration(environment)
                Issue.record("\(name) = \(demoValue) was accepted outside demo mode")
            } catch let error as ConfigurationError {
                #expect(error.description.contains(name))
            }
        }
        #expect(throws: ConfigurationError.self) { try configuration(secrets.merging(["REDIS_URL": "redis://:cloudbill-demo-redis-password@127.0.0.1:6379"]) { $1 }) }
        #expect(throws: ConfigurationError.self) { try configuration(secrets.merging(["CLOUDBILL_ADMIN_TOKEN": "short"]) { $1 }) }
        let settled = try configuration(secrets)
        #expect(!settled.isDemo && !settled.faultsEnabled && settled.webhookAllowedOrigins.isEmpty)
    }

    @Test func demoModeIsExplicitAndUsesThePublishedSecrets() throws {
        for settled in [try configuration(["CLOUDBILL_DEMO": "1"]), try configuration([:], demo: true)] {
            #expect(settled.isDemo)
            #expect(settled.internalToken == ServiceConfiguration.demoInternalToken)
            #expect(settled.adminToken == ServiceConfiguration.demoAdminToken)
        }
        #expect(throws: ConfigurationError.self) { try configuration(["CLOUDBILL_DEMO": "maybe"]) }
    }

    @Test func aPreviousInternalTokenIsAcceptedDuringARotation() throws {
        let settled = try configuration(secrets.merging(["CLOUDBILL_INTERNAL_TOKEN_PREVIOUS": "old-internal-secret-0123"]) { $1 })
        #expect(settled.acceptedInternalTokens == ["internal-secret-0123456789", "old-internal-secret-0123"])
    }

    @Test func redisCredentialsComeFromTheURL() throws {
        let settled = try configuration(secrets.merging(["REDIS_URL": "redis://cache-user:p%40ss@redis.internal:6380"]) { $1 })
        let endpoint = try settled.redisEndpoint
        #expect(endpoint.host == "redis.internal" && endpoint.port == 6380)
        #expect(endpoint.user == "cache-user" && endpoint.password == "p@ss")
    }

    @Test func webhooksGoOnlyToAllowedOrigins() throws {
        let allowed: Set = [try #require(WebhookOrigin("http://127.0.0.1:5001")), try #require(WebhookOrigin("https://hooks.example.com"))]
        #expect(try WebhookURL.validate("http://127.0.0.1:5001/receipts", field: "recipient", allowedOrigins: allowed) == "http://127.0.0.1:5001/receipts")
        #expect(try WebhookURL.validate("https://hooks.example.com:443/x", field: "recipient", allowedOrigins: allowed) == "https://hooks.example.com:443/x")
        for hostile in [
            "http://127.0.0.1:9090/-/quit", "http://127.0.0.1/", "https://127.0.0.1:5001/", "http://localhost:5001/",
            "http://hooks.example.com/", "https://hooks.example.com:8443/", "http://user:pw@127.0.0.1:5001/", "ftp://127.0.0.1:5001/",
        ] {
            #expect(throws: APIError.self, "\(hostile)") { try WebhookURL.validate(hostile, field: "recipient", allowedOrigins: allowed) }
        }
        #expect(throws: APIError.self) { try WebhookURL.validate("http://127.0.0.1:5001/", field: "recipient", allowedOrigins: []) }
        // At delivery: a literally allowed internal address passes; a removed origin does not.
        #expect(WebhookURL.deliveryRefusal("http://127.0.0.1:5001/x", allowedOrigins: allowed) == nil)
        #expect(WebhookURL.deliveryRefusal("http://127.0.0.1:9090/-/quit", allowedOrigins: allowed) != nil)
    }

    @Test func internalAddressesAreRecognised() throws {
        let inside = ["127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.0.1", "169.254.169.254", "100.64.0.1",
                        "0.0.0.0", "224.0.0.1", "::1", "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "ff02::1"]
        let external = ["93.184.216.34", "172.32.0.1", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"]
        for text in inside { #expect(try #require(IPAddress(text)).isInternal, "\(text)") }
        for text in external { #expect(try #require(IPAddress(text)).isInternal == false, "\(text)") }
    }
}
