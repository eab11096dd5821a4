import EventBroker
import JWTKit

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Mints HS256 tokens that a ``TokenVerifier`` configured with the same secret accepts: `broker-cli token` and
/// tests use it.
///
/// The token is signed by jwt-kit's `JWTKeyCollection`, hence `async`. Times are whole seconds:
///
/// ```
/// header   {"alg":"HS256","typ":"JWT"}
/// payload  {"aud":"broker","broker.publish":["orders/eu/*"],"broker.subscribe":["orders/**"],
///           "exp":1767225600,"iat":1767222000,"sub":"shop-eu"}
/// ```
/// `aud` is a string for one audience and an array for several; empty selector lists and nil claims are left out.
public struct TokenIssuer: Sendable {
    private let secret: String

    /// - Parameter secret: The HS256 secret: 32 bytes or more, and not a PEM key.
    /// - Throws: ``AuthorizationError`` with ``AuthorizationError/Code/invalidConfiguration``.
    public init(secret: String) throws(AuthorizationError) {
        try TokenVerifierConfiguration.validateSecret(secret)
        self.secret = secret
    }

    /// Signs a token granting what `token` grants.
    ///
    /// - Parameters:
    ///   - token: The subject, expiry, audiences and selectors to put in the claims; `expiresAt` is rounded down to
    ///     a whole second.
    ///   - issuedAt: The `iat` claim, rounded down to a whole second.
    /// - Returns: The compact JWS, `header.payload.signature`.
    public func issue(_ token: AccessToken, issuedAt: Date) async throws(AuthorizationError) -> String {
        let claims = AccessTokenClaims(
            subject: token.subject.map { SubjectClaim(value: $0) },
            expiration: token.expiresAt.map { ExpirationClaim(value: $0) },
            issuedAt: IssuedAtClaim(value: issuedAt),
            audience: token.audience.isEmpty ? nil : AudienceClaim(value: token.audience),
            publish: token.publishSelectors,
            subscribe: token.subscribeSelectors
        )
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .integerSecondsSince1970
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let keys = JWTKeyCollection()
        await keys.add(
            hmac: HMACKey(from: self.secret),
            digestAlgorithm: .sha256,
            serializer: DefaultJWTSerializer(jsonEncoder: encoder)
        )
        do {
            return try await keys.sign(claims)
        } catch {
            throw AuthorizationError(.invalidConfiguration, "jwt-kit could not sign the token: \(error).")
        }
    }
}
