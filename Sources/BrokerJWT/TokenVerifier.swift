import EventBroker
import JWTKit

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Checks a JWT and turns it into the ``AccessToken`` it grants, synchronously, on whatever thread asks.
///
/// Create one at startup (the initialiser is `async`), then call ``verify(_:now:)`` once per request or per stream
/// opened. The checks run in this order, and the first failure is the error:
///
/// ```
/// header.payload.signature          base64url, no padding; 8 KiB by default → malformed_token
/// header  {"alg":"HS256",…}         JSON object with a string alg, no crit  → malformed_token
///         alg none                                                          → unsecured_token
///         alg without a configured key (HS256 given only a public key, …)   → algorithm_not_allowed
/// signature over "header.payload"   with the key configured for that alg    → invalid_signature
/// payload {"exp":…,"broker.publish":[…],…}  a JSON object                   → malformed_token
///         sub, exp, nbf, aud, broker.publish, broker.subscribe typed        → invalid_claim
///         exp ≤ now − leeway                                                → token_expired
///         nbf > now + leeway                                                → token_not_yet_valid
///         aud lacks the configured audience                                 → wrong_audience
/// ```
///
/// Why not `JWTKeyCollection.verify`: jwt-kit 5 keeps its keys in an actor whose methods are `async`, while the
/// broker authorizes on NIO event loops, which must not wait. jwt-kit's algorithms themselves are synchronous
/// (`JWTAlgorithm.verify(_:signs:)`), so the initialiser builds each key in a `JWTKeyCollection` once, keeps the
/// `JWTAlgorithm` it hands out, and `verify` drives those directly: the signature is checked by jwt-kit (HMAC,
/// RSASSA-PKCS1-v1_5 and ECDSA from swift-crypto), and the claims are decoded into jwt-kit's claim types. This also
/// checks what jwt-kit's `verify` leaves out: it never compares the header's `alg` with the key's algorithm.
///
/// The key is chosen by the header's `alg` among the configured ones, never the other way round, and each algorithm
/// has exactly one key; `kid` is ignored.
///
/// Cost, per connection or request and never per event: two base64 and two small JSON decodes plus one signature
/// check, under 0.35 ms for each algorithm in a debug build (most of it decoding; RSA-2048 and P-256 verification
/// add little). Immutable and `Sendable`: one verifier serves every event loop at once, without locks.
public struct TokenVerifier: AccessTokenVerifying {
    private struct Key: Sendable {
        let name: String
        let algorithm: any JWTAlgorithm
    }

    private let keys: [Key]
    private let audience: String?
    private let leewaySeconds: Double
    private let maxTokenBytes: Int
    private let jsonDecoder: any JWTJSONDecoder

    /// The `alg` values this verifier accepts, in configuration order: `HS256`, then `RS256` or `ES256`.
    public var allowedAlgorithms: [String] { self.keys.map(\.name) }

    /// Reads the configured keys; the only `async` step, done once.
    ///
    /// - Parameter configuration: At least one key. The secret must have 32 bytes or more and must not be a PEM key;
    ///   the PEM must be an RSA public key of 2048 bits or more, or an EC P-256 public key.
    /// - Throws: ``AuthorizationError`` with ``AuthorizationError/Code/invalidConfiguration``.
    public init(configuration: TokenVerifierConfiguration) async throws(AuthorizationError) {
        guard configuration.hmacSecret != nil || configuration.publicKeyPEM != nil else {
            throw AuthorizationError(.invalidConfiguration, "Configure an HS256 secret, a public key, or both.")
        }
        guard configuration.clockSkewLeeway >= .zero else {
            throw AuthorizationError(.invalidConfiguration, "The clock skew leeway must not be negative.")
        }
        guard configuration.maxTokenBytes > 0 else {
            throw AuthorizationError(.invalidConfiguration, "The token size limit must be more than 0 bytes.")
        }
        var keys: [Key] = []
        if let secret = configuration.hmacSecret {
            try TokenVerifierConfiguration.validateSecret(secret)
            let collection = JWTKeyCollection()
            await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            keys.append(Key(name: "HS256", algorithm: try await Self.algorithm(of: collection)))
        }
        if let pem = configuration.publicKeyPEM {
            keys.append(try await Self.publicKey(pem))
        }
        self.keys = keys
        self.audience = configuration.audience
        self.leewaySeconds = configuration.clockSkewLeeway.timeInterval
        self.maxTokenBytes = configuration.maxTokenBytes
        self.jsonDecoder = .defaultForJWT
    }

    /// Verifies `token` (the compact JWS, without `Bearer `) and returns what it grants.
    ///
    /// - Parameters:
    ///   - token: The token as received: from `Authorization: Bearer`, the `access_token` parameter or a cookie.
    ///   - now: The time to check `exp` and `nbf` against, usually `Date()`.
    /// - Throws: ``AuthorizationError`` with one code per reason, listed on ``TokenVerifier``.
    public func verify(_ token: String, now: Date) throws(AuthorizationError) -> AccessToken {
        guard token.utf8.count <= self.maxTokenBytes else {
            throw AuthorizationError(.malformedToken, "The token is longer than \(self.maxTokenBytes) bytes.")
        }
        let bytes = Array(token.utf8)
        let parts = bytes.split(separator: UInt8(ascii: "."), maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw AuthorizationError(.malformedToken, "The token is not three base64url parts separated by '.'.")
        }
        let key = try self.key(forHeader: parts[0])
        guard let signature = Base64URL.decode(parts[2]) else {
            throw AuthorizationError(.malformedToken, "The token's signature is not base64url.")
        }
        let signingInput = bytes[..<parts[2].startIndex].dropLast()
        guard (try? key.algorithm.verify(signature, signs: signingInput)) == true else {
            throw AuthorizationError(.invalidSignature, "The token's \(key.name) signature does not verify.")
        }
        let claims = try self.claims(parts[1])
        try self.check(claims, now: now)
        return AccessToken(
            subject: claims.subject?.value,
            expiresAt: claims.expiration?.value,
            acceptedUntil: claims.expiration?.value.addingTimeInterval(self.leewaySeconds),
            audience: claims.audience?.value ?? [],
            publishSelectors: claims.publish,
            subscribeSelectors: claims.subscribe
        )
    }

    /// The key for the header's `alg`, or why there is none.
    private func key(forHeader part: ArraySlice<UInt8>) throws(AuthorizationError) -> Key {
        guard let json = Base64URL.decode(part), let header = try? self.jsonDecoder.decode(JWTHeader.self, from: json)
        else {
            throw AuthorizationError(.malformedToken, "The token's header is not a base64url JSON object.")
        }
        guard let algorithm = header.alg else {
            throw AuthorizationError(.malformedToken, "The token's header has no 'alg' string.")
        }
        guard algorithm.lowercased() != "none" else {
            throw AuthorizationError(.unsecuredToken, "The token is unsigned ('alg' is 'none').")
        }
        guard let key = self.keys.first(where: { $0.name == algorithm }) else {
            let allowed = self.allowedAlgorithms.joined(separator: ", ")
            throw AuthorizationError(
                .algorithmNotAllowed,
                "Tokens signed with '\(algorithm.prefix(16))' are not accepted; this broker accepts \(allowed)."
            )
        }
        // RFC 7515 §4.1.11: a recipient must refuse extensions it does not understand, and this one knows none.
        guard header.fields["crit"] == nil else {
            throw AuthorizationError(.malformedToken, "The token's header lists critical extensions ('crit').")
        }
        return key
    }

    private func claims(_ part: ArraySlice<UInt8>) throws(AuthorizationError) -> AccessTokenClaims {
        guard let json = Base64URL.decode(part) else {
            throw AuthorizationError(.malformedToken, "The token's payload is not base64url.")
        }
        do {
            return try self.jsonDecoder.decode(AccessTokenClaims.self, from: json)
        } catch let error as AuthorizationError {
            throw error
        } catch {
            throw AuthorizationError(.malformedToken, "The token's payload is not a JSON object.")
        }
    }

    private func check(_ claims: AccessTokenClaims, now: Date) throws(AuthorizationError) {
        if let expiration = claims.expiration?.value, now.timeIntervalSince(expiration) >= self.leewaySeconds {
            throw AuthorizationError(
                .tokenExpired,
                "The token expired at \(Int64(expiration.timeIntervalSince1970.rounded(.down))) (seconds since 1970)."
            )
        }
        if let notBefore = claims.notBefore?.value, notBefore.timeIntervalSince(now) > self.leewaySeconds {
            throw AuthorizationError(
                .tokenNotYetValid,
                "The token is valid from \(Int64(notBefore.timeIntervalSince1970.rounded(.up))) (seconds since 1970)."
            )
        }
        if let audience = self.audience, claims.audience?.value.contains(audience) != true {
            throw AuthorizationError(.wrongAudience, "The token is not intended for '\(audience)' ('aud').")
        }
    }

    /// An RS256 or ES256 key, by the PEM's key type.
    private static func publicKey(_ pem: String) async throws(AuthorizationError) -> Key {
        guard !pem.contains("PRIVATE KEY") else {
            throw AuthorizationError(
                .invalidConfiguration, "The public key PEM holds a private key; give the broker the public key only.")
        }
        let collection = JWTKeyCollection()
        let name: String
        if let key = try? ES256PublicKey(pem: pem) {
            await collection.add(ecdsa: key)
            name = "ES256"
        } else if let key = try? Insecure.RSA.PublicKey(pem: pem) {
            await collection.add(rsa: key, digestAlgorithm: .sha256)
            name = "RS256"
        } else {
            throw AuthorizationError(
                .invalidConfiguration,
                "The public key is not a PEM 'PUBLIC KEY' of RSA (2048 bits or more) or of EC P-256."
            )
        }
        return Key(name: name, algorithm: try await Self.algorithm(of: collection))
    }

    private static func algorithm(of keys: JWTKeyCollection) async throws(AuthorizationError) -> any JWTAlgorithm {
        do {
            return try await keys.getKey()
        } catch {
            throw AuthorizationError(.invalidConfiguration, "jwt-kit could not prepare the key: \(error).")
        }
    }
}
