import BrokerJWT
import EventBroker
import Foundation
import Testing

@Suite struct TokenVerifierTests {
    /// A token the verifier must refuse, the verifier's keys, and the code it must refuse it with.
    enum BadToken: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case notThreeParts, fourParts, headerNotBase64URL, headerNotJSON, headerWithoutAlg, headerWithCrit
        case paddedSignature, payloadNotJSON, payloadNotAnObject, tooLong
        case algNone, algNoneWithSignature
        case hs256SignedWithRSAPublicKeyAsSecret, rs256HeaderOverHMACOfRSAPublicKey, rs256WhenOnlySecret
        case es256WhenRSAKey, hs512, otherSecret, tamperedPayload, es256SignedByOtherKey, truncatedRS256Signature
        case expired, expiredAtLeewayBoundary, notYetValid
        case wrongAudience, missingAudience, wrongAudienceInArray
        case publishNotArray, subscribeOfNumbers, invalidSelectorInPublish, invalidSelectorInSubscribe
        case expNotNumber, nbfNotNumber, subNotString, audNotString

        var testDescription: String { self.rawValue }

        var expected: AuthorizationError.Code {
            switch self {
            case .notThreeParts, .fourParts, .headerNotBase64URL, .headerNotJSON, .headerWithoutAlg, .headerWithCrit,
                .paddedSignature, .payloadNotJSON, .payloadNotAnObject, .tooLong:
                return .malformedToken
            case .algNone, .algNoneWithSignature:
                return .unsecuredToken
            case .hs256SignedWithRSAPublicKeyAsSecret, .rs256WhenOnlySecret, .es256WhenRSAKey, .hs512:
                return .algorithmNotAllowed
            case .rs256HeaderOverHMACOfRSAPublicKey, .otherSecret, .tamperedPayload, .es256SignedByOtherKey,
                .truncatedRS256Signature:
                return .invalidSignature
            case .expired, .expiredAtLeewayBoundary:
                return .tokenExpired
            case .notYetValid:
                return .tokenNotYetValid
            case .wrongAudience, .missingAudience, .wrongAudienceInArray:
                return .wrongAudience
            case .publishNotArray, .subscribeOfNumbers, .invalidSelectorInPublish, .invalidSelectorInSubscribe,
                .expNotNumber, .nbfNotNumber, .subNotString, .audNotString:
                return .invalidClaim
            }
        }

        /// The verifier and the token.
        func make() async throws -> (TokenVerifier, String) {
            let hs256 = #"{"alg":"HS256","typ":"JWT"}"#
            let rs256 = #"{"alg":"RS256","typ":"JWT"}"#
            let valid = #"{"sub":"x","exp":\#(TestTokens.epoch(60)),"broker.subscribe":["a/**"]}"#
            let secretOnly = try await TestTokens.verifier()
            let rsaOnly = try await TestTokens.verifier(secret: nil, publicKeyPEM: TestTokens.rsaPublicKeyPEM)
            let p256Only = try await TestTokens.verifier(secret: nil, publicKeyPEM: TestTokens.p256PublicKeyPEM)
            let withAudience = try await TestTokens.verifier(audience: "broker")
            switch self {
            case .notThreeParts:
                return (secretOnly, "abc.def")
            case .fourParts:
                return (secretOnly, try await TestTokens.hs256(valid) + ".e30")
            case .headerNotBase64URL:
                return (secretOnly, "eyJ!bGciOiJIUzI1NiJ9.e30.c2ln")
            case .headerNotJSON:
                return (secretOnly, try await TestTokens.token(header: "HS256", payload: valid))
            case .headerWithoutAlg:
                return (secretOnly, try await TestTokens.token(header: #"{"typ":"JWT"}"#, payload: valid))
            case .headerWithCrit:
                let header = #"{"alg":"HS256","crit":["exp-v2"],"exp-v2":1}"#
                return (secretOnly, try await TestTokens.token(header: header, payload: valid))
            case .paddedSignature:
                return (secretOnly, try await TestTokens.hs256(valid) + "=")
            case .payloadNotJSON:
                return (secretOnly, try await TestTokens.hs256("exp=1"))
            case .payloadNotAnObject:
                return (secretOnly, try await TestTokens.hs256(#"["broker.publish"]"#))
            case .tooLong:
                let padding = String(repeating: "x", count: 9000)
                return (secretOnly, try await TestTokens.hs256(#"{"pad":"\#(padding)"}"#))
            case .algNone:
                return (secretOnly, try await TestTokens.token(header: #"{"alg":"none"}"#, payload: valid, signer: nil))
            case .algNoneWithSignature:
                let header = #"{"alg":"None","typ":"JWT"}"#
                return (secretOnly, try await TestTokens.token(header: header, payload: valid))
            case .hs256SignedWithRSAPublicKeyAsSecret:
                // The classic confusion: the attacker knows the public key and uses its PEM as an HMAC secret.
                let forged = try await TestTokens.token(
                    header: hs256, payload: valid, signer: .hmac(TestTokens.rsaPublicKeyPEM))
                return (rsaOnly, forged)
            case .rs256HeaderOverHMACOfRSAPublicKey:
                let forged = try await TestTokens.token(
                    header: rs256, payload: valid, signer: .hmac(TestTokens.rsaPublicKeyPEM))
                return (rsaOnly, forged)
            case .rs256WhenOnlySecret:
                return (secretOnly, try await TestTokens.token(header: rs256, payload: valid, signer: .rsa))
            case .es256WhenRSAKey:
                let token = try await TestTokens.token(
                    header: #"{"alg":"ES256"}"#, payload: valid, signer: .p256(TestTokens.p256Key))
                return (rsaOnly, token)
            case .hs512:
                return (secretOnly, try await TestTokens.token(header: #"{"alg":"HS512"}"#, payload: valid))
            case .otherSecret:
                return (secretOnly, try await TestTokens.hs256(valid, secret: TestTokens.otherSecret))
            case .tamperedPayload:
                let parts = try await TestTokens.hs256(valid).split(separator: ".")
                let widened = TestTokens.base64URL(Array(#"{"sub":"x","broker.publish":["**"]}"#.utf8))
                return (secretOnly, "\(parts[0]).\(widened).\(parts[2])")
            case .es256SignedByOtherKey:
                let token = try await TestTokens.token(
                    header: #"{"alg":"ES256"}"#, payload: valid, signer: .p256(TestTokens.otherP256Key))
                return (p256Only, token)
            case .truncatedRS256Signature:
                let token = try await TestTokens.token(header: rs256, payload: valid, signer: .rsa)
                return (rsaOnly, String(token.dropLast(8)))
            case .expired:
                return (secretOnly, try await TestTokens.hs256(#"{"exp":\#(TestTokens.epoch(-60))}"#))
            case .expiredAtLeewayBoundary:
                return (secretOnly, try await TestTokens.hs256(#"{"exp":\#(TestTokens.epoch(-5))}"#))
            case .notYetValid:
                return (secretOnly, try await TestTokens.hs256(#"{"nbf":\#(TestTokens.epoch(60))}"#))
            case .wrongAudience:
                return (withAudience, try await TestTokens.hs256(#"{"aud":"other"}"#))
            case .missingAudience:
                return (withAudience, try await TestTokens.hs256(#"{"sub":"x"}"#))
            case .wrongAudienceInArray:
                return (withAudience, try await TestTokens.hs256(#"{"aud":["other","brokers"]}"#))
            case .publishNotArray:
                return (secretOnly, try await TestTokens.hs256(#"{"broker.publish":"orders"}"#))
            case .subscribeOfNumbers:
                return (secretOnly, try await TestTokens.hs256(#"{"broker.subscribe":[1,2]}"#))
            case .invalidSelectorInPublish:
                return (secretOnly, try await TestTokens.hs256(#"{"broker.publish":["orders/**/x"]}"#))
            case .invalidSelectorInSubscribe:
                return (secretOnly, try await TestTokens.hs256(#"{"broker.subscribe":["orders","a//b"]}"#))
            case .expNotNumber:
                return (secretOnly, try await TestTokens.hs256(#"{"exp":"tomorrow"}"#))
            case .nbfNotNumber:
                return (secretOnly, try await TestTokens.hs256(#"{"nbf":true}"#))
            case .subNotString:
                return (secretOnly, try await TestTokens.hs256(#"{"sub":42}"#))
            case .audNotString:
                return (secretOnly, try await TestTokens.hs256(#"{"aud":{"name":"broker"}}"#))
            }
        }
    }

    @Test(arguments: BadToken.allCases)
    func refusesBadTokenWithItsOwnCode(_ badToken: BadToken) async throws {
        let (verifier, token) = try await badToken.make()
        let error = #expect(throws: AuthorizationError.self) {
            try verifier.verify(token, now: TestTokens.now)
        }
        #expect(error?.code == badToken.expected, "\(error?.description ?? "no error")")
    }

    @Test func claimErrorsNameTheClaimAndTheSelector() async throws {
        let verifier = try await TestTokens.verifier()
        let publish = try await TestTokens.hs256(#"{"broker.publish":["orders/**/x"]}"#)
        let error = #expect(throws: AuthorizationError.self) { try verifier.verify(publish, now: TestTokens.now) }
        #expect(error?.message == "The 'broker.publish' claim holds an invalid topic selector 'orders/**/x'.")
        let expiry = try await TestTokens.hs256(#"{"exp":"tomorrow"}"#)
        let expiryError = #expect(throws: AuthorizationError.self) { try verifier.verify(expiry, now: TestTokens.now) }
        #expect(expiryError?.message == "The 'exp' claim must be seconds since 1970.")
    }

    @Test func errorMessagesEchoNeitherTheSecretNorTheToken() async throws {
        let verifier = try await TestTokens.verifier()
        for badToken in BadToken.allCases {
            let (_, token) = try await badToken.make()
            do {
                _ = try verifier.verify(token, now: TestTokens.now)
            } catch {
                #expect(!error.message.contains(TestTokens.secret))
                #expect(!error.message.contains(token))
            }
        }
    }

    @Test func acceptsHS256TokenAndReadsItsClaims() async throws {
        let verifier = try await TestTokens.verifier()
        let token = try await TestTokens.hs256(
            #"{"sub":"shop-eu","exp":\#(TestTokens.epoch(3600)),"nbf":\#(TestTokens.epoch(-10)),"aud":"broker","#
                + #""broker.publish":["orders/eu/*"],"broker.subscribe":["orders/**","$presence/orders"]}"#
        )
        let access = try verifier.verify(token, now: TestTokens.now)
        #expect(access.subject == "shop-eu")
        #expect(access.expiresAt == TestTokens.now.addingTimeInterval(3600))
        // Accepted until exp plus the default 5 s leeway: a stream opened with the token ends then.
        #expect(access.acceptedUntil == TestTokens.now.addingTimeInterval(3605))
        #expect(access.audience == ["broker"])
        #expect(access.publishSelectors == [try TopicSelector("orders/eu/*")])
        #expect(access.subscribeSelectors == [try TopicSelector("orders/**"), try TopicSelector("$presence/orders")])
        #expect(verifier.allowedAlgorithms == ["HS256"])
    }

    @Test func acceptsRS256TokenSignedWithThePrivateKey() async throws {
        let verifier = try await TestTokens.verifier(secret: nil, publicKeyPEM: TestTokens.rsaPublicKeyPEM)
        #expect(verifier.allowedAlgorithms == ["RS256"])
        let token = try await TestTokens.token(
            header: #"{"alg":"RS256","typ":"JWT"}"#, payload: #"{"sub":"rsa","broker.publish":["a/*"]}"#, signer: .rsa)
        let access = try verifier.verify(token, now: TestTokens.now)
        #expect(access.subject == "rsa")
        #expect(access.mayPublish(to: try TopicName("a/b")))
    }

    @Test func acceptsES256TokenSignedWithThePrivateKey() async throws {
        let verifier = try await TestTokens.verifier(secret: nil, publicKeyPEM: TestTokens.p256PublicKeyPEM)
        #expect(verifier.allowedAlgorithms == ["ES256"])
        let token = try await TestTokens.token(
            header: #"{"alg":"ES256"}"#, payload: #"{"sub":"ec","broker.subscribe":["**"]}"#,
            signer: .p256(TestTokens.p256Key))
        let access = try verifier.verify(token, now: TestTokens.now)
        #expect(access.subject == "ec")
        #expect(access.maySubscribe(to: try TopicSelector("anything/**")))
    }

    @Test func acceptsEachConfiguredAlgorithmWithItsOwnKey() async throws {
        let verifier = try await TestTokens.verifier(publicKeyPEM: TestTokens.rsaPublicKeyPEM)
        #expect(verifier.allowedAlgorithms == ["HS256", "RS256"])
        let hmac = try await TestTokens.hs256(#"{"sub":"hmac"}"#)
        let rsa = try await TestTokens.token(header: #"{"alg":"RS256"}"#, payload: #"{"sub":"rsa"}"#, signer: .rsa)
        #expect(try verifier.verify(hmac, now: TestTokens.now).subject == "hmac")
        #expect(try verifier.verify(rsa, now: TestTokens.now).subject == "rsa")
        // Even with an HS256 key configured, the RSA public key is never the HMAC key.
        let forged = try await TestTokens.token(
            header: #"{"alg":"HS256"}"#, payload: #"{"sub":"forged"}"#, signer: .hmac(TestTokens.rsaPublicKeyPEM))
        let error = #expect(throws: AuthorizationError.self) { try verifier.verify(forged, now: TestTokens.now) }
        #expect(error?.code == .invalidSignature)
    }

    @Test func toleratesClockSkewUpToTheLeeway() async throws {
        let verifier = try await TestTokens.verifier(leeway: .seconds(5))
        let justExpired = try await TestTokens.hs256(#"{"exp":\#(TestTokens.epoch(-4))}"#)
        let soonValid = try await TestTokens.hs256(#"{"nbf":\#(TestTokens.epoch(5))}"#)
        _ = try verifier.verify(justExpired, now: TestTokens.now)
        _ = try verifier.verify(soonValid, now: TestTokens.now)
        let tooSoon = try await TestTokens.hs256(#"{"nbf":\#(TestTokens.epoch(6))}"#)
        #expect(
            throws: AuthorizationError(
                .tokenNotYetValid, "The token is valid from \(TestTokens.epoch(6)) (seconds since 1970).")
        ) {
            try verifier.verify(tooSoon, now: TestTokens.now)
        }
    }

    @Test func zeroLeewayComparesExactly() async throws {
        let verifier = try await TestTokens.verifier(leeway: .zero)
        let expiresNow = try await TestTokens.hs256(#"{"exp":\#(TestTokens.epoch(0))}"#)
        let expiresInOneSecond = try await TestTokens.hs256(#"{"exp":\#(TestTokens.epoch(1))}"#)
        let validFromNow = try await TestTokens.hs256(#"{"nbf":\#(TestTokens.epoch(0))}"#)
        #expect(throws: AuthorizationError.self) { try verifier.verify(expiresNow, now: TestTokens.now) }
        _ = try verifier.verify(expiresInOneSecond, now: TestTokens.now)
        _ = try verifier.verify(validFromNow, now: TestTokens.now)
    }

    @Test func acceptsConfiguredAudienceAsStringOrInArray() async throws {
        let verifier = try await TestTokens.verifier(audience: "broker")
        let single = try await TestTokens.hs256(#"{"aud":"broker"}"#)
        let several = try await TestTokens.hs256(#"{"aud":["web","broker"]}"#)
        #expect(try verifier.verify(single, now: TestTokens.now).audience == ["broker"])
        #expect(try verifier.verify(several, now: TestTokens.now).audience == ["web", "broker"])
    }

    @Test func ignoresAudienceWhenNoneIsConfigured() async throws {
        let verifier = try await TestTokens.verifier()
        let token = try await TestTokens.hs256(#"{"aud":"elsewhere"}"#)
        #expect(try verifier.verify(token, now: TestTokens.now).audience == ["elsewhere"])
    }

    @Test func ignoresClaimsItDoesNotReadWhateverTheirType() async throws {
        let verifier = try await TestTokens.verifier()
        let token = try await TestTokens.hs256(#"{"iat":"yesterday","iss":5,"jti":null,"custom":{"a":[1]}}"#)
        let access = try verifier.verify(token, now: TestTokens.now)
        #expect(access == AccessToken())
    }

    @Test func acceptsTokenOfExactlyTheSizeLimit() async throws {
        let small = try await TestTokens.hs256(#"{"pad":""}"#)
        let verifier = try await TokenVerifier(
            configuration: TokenVerifierConfiguration(hmacSecret: TestTokens.secret, maxTokenBytes: small.utf8.count))
        _ = try verifier.verify(small, now: TestTokens.now)
        let larger = try await TestTokens.hs256(#"{"pad":"xxxx"}"#)
        #expect(throws: AuthorizationError.self) { try verifier.verify(larger, now: TestTokens.now) }
    }

    @Test func verifiesTokensMintedByTheIssuer() async throws {
        let issuer = try TokenIssuer(secret: TestTokens.secret)
        let granted = AccessToken(
            subject: "shop-eu",
            expiresAt: TestTokens.now.addingTimeInterval(3600),
            audience: ["broker"],
            publishSelectors: [try TopicSelector("orders/eu/*")],
            subscribeSelectors: [try TopicSelector("orders/**")]
        )
        let token = try await issuer.issue(granted, issuedAt: TestTokens.now)
        #expect(token.hasPrefix(TestTokens.base64URL(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "."))
        #expect(
            try TestTokens.payloadJSON(of: token)
                == #"{"aud":"broker","broker.publish":["orders/eu/*"],"broker.subscribe":["orders/**"],"#
                + #""exp":\#(TestTokens.epoch(3600)),"iat":\#(TestTokens.epoch(0)),"sub":"shop-eu"}"#
        )
        let verifier = try await TestTokens.verifier(audience: "broker")
        var verified = granted
        verified.acceptedUntil = TestTokens.now.addingTimeInterval(3605)
        #expect(try verifier.verify(token, now: TestTokens.now) == verified)
    }

    @Test func issuerLeavesOutEmptyClaims() async throws {
        let issuer = try TokenIssuer(secret: TestTokens.secret)
        let token = try await issuer.issue(
            AccessToken(subscribeSelectors: [try TopicSelector("a")]), issuedAt: TestTokens.now)
        #expect(try TestTokens.payloadJSON(of: token) == #"{"broker.subscribe":["a"],"iat":\#(TestTokens.epoch(0))}"#)
    }

    @Test func refusesUnusableConfigurations() async throws {
        let cases: [(TokenVerifierConfiguration, String)] = [
            (TokenVerifierConfiguration(), "Configure an HS256 secret, a public key, or both."),
            (TokenVerifierConfiguration(hmacSecret: "short"), "The HS256 secret has 5 bytes; use at least 32."),
            (
                TokenVerifierConfiguration(hmacSecret: TestTokens.rsaPublicKeyPEM),
                "The HS256 secret is a PEM key; give a public key as the public key, and a random secret for HS256."
            ),
            (
                TokenVerifierConfiguration(publicKeyPEM: TestTokens.p256Key.pemRepresentation),
                "The public key PEM holds a private key; give the broker the public key only."
            ),
            (
                TokenVerifierConfiguration(publicKeyPEM: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
                "The public key is not a PEM 'PUBLIC KEY' of RSA (2048 bits or more) or of EC P-256."
            ),
            (
                TokenVerifierConfiguration(hmacSecret: TestTokens.secret, clockSkewLeeway: .seconds(-1)),
                "The clock skew leeway must not be negative."
            ),
        ]
        for (configuration, message) in cases {
            await #expect(throws: AuthorizationError(.invalidConfiguration, message)) {
                try await TokenVerifier(configuration: configuration)
            }
        }
        #expect(throws: AuthorizationError(.invalidConfiguration, "The HS256 secret has 5 bytes; use at least 32.")) {
            try TokenIssuer(secret: "short")
        }
    }

    @Test func configurationDescriptionHidesTheSecret() {
        let configuration = TokenVerifierConfiguration(hmacSecret: TestTokens.secret, audience: "broker")
        #expect(!configuration.description.contains(TestTokens.secret))
        #expect(
            configuration.description
                == "TokenVerifierConfiguration(keys: HS256 secret, audience: 'broker', leeway: 5.0 seconds)")
    }
}
