import EventBroker
import JWTKit

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The JWT payload the broker reads and mints: jwt-kit's registered claims plus the two selector lists.
///
/// ```
/// {"sub":"shop-eu","iat":1767222000,"exp":1767225600,"aud":"broker",
///  "broker.publish":["orders/eu/*"],"broker.subscribe":["orders/**"]}
/// ```
/// Decoding throws ``AuthorizationError`` itself, naming the claim, so a payload that is JSON but carries a claim of
/// the wrong type (`"exp":"soon"`, `"broker.publish":"orders"`, an invalid selector) is told apart from a malformed
/// token. Claims the broker does not read (`iat`, `iss`, `jti`, anything custom) are not decoded, so their types
/// never matter.
struct AccessTokenClaims: JWTPayload, Equatable {
    enum CodingKeys: String, CodingKey {
        case subject = "sub"
        case expiration = "exp"
        case notBefore = "nbf"
        case issuedAt = "iat"
        case audience = "aud"
        case publish = "broker.publish"
        case subscribe = "broker.subscribe"
    }

    var subject: SubjectClaim?
    var expiration: ExpirationClaim?
    var notBefore: NotBeforeClaim?
    /// Minted, never read.
    var issuedAt: IssuedAtClaim?
    var audience: AudienceClaim?
    var publish: [TopicSelector]
    var subscribe: [TopicSelector]

    init(
        subject: SubjectClaim? = nil,
        expiration: ExpirationClaim? = nil,
        notBefore: NotBeforeClaim? = nil,
        issuedAt: IssuedAtClaim? = nil,
        audience: AudienceClaim? = nil,
        publish: [TopicSelector] = [],
        subscribe: [TopicSelector] = []
    ) {
        self.subject = subject
        self.expiration = expiration
        self.notBefore = notBefore
        self.issuedAt = issuedAt
        self.audience = audience
        self.publish = publish
        self.subscribe = subscribe
    }

    init(from decoder: any Decoder) throws {
        let container: KeyedDecodingContainer<CodingKeys>
        do {
            container = try decoder.container(keyedBy: CodingKeys.self)
        } catch {
            throw AuthorizationError(.malformedToken, "The token's payload is not a JSON object.")
        }
        self.subject = try Self.decode(SubjectClaim.self, .subject, "a string", from: container)
        self.expiration = try Self.decode(ExpirationClaim.self, .expiration, "seconds since 1970", from: container)
        self.notBefore = try Self.decode(NotBeforeClaim.self, .notBefore, "seconds since 1970", from: container)
        self.issuedAt = nil
        self.audience = try Self.decode(
            AudienceClaim.self, .audience, "a string or an array of strings", from: container)
        self.publish = try Self.selectors(.publish, from: container)
        self.subscribe = try Self.selectors(.subscribe, from: container)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(self.subject, forKey: .subject)
        try container.encodeIfPresent(self.issuedAt, forKey: .issuedAt)
        try container.encodeIfPresent(self.notBefore, forKey: .notBefore)
        try container.encodeIfPresent(self.expiration, forKey: .expiration)
        try container.encodeIfPresent(self.audience, forKey: .audience)
        if !self.publish.isEmpty {
            try container.encode(self.publish.map(\.value), forKey: .publish)
        }
        if !self.subscribe.isEmpty {
            try container.encode(self.subscribe.map(\.value), forKey: .subscribe)
        }
    }

    /// Checks nothing: ``TokenVerifier`` checks the claims synchronously, with its own clock and leeway.
    func verify(using algorithm: some JWTAlgorithm) async throws {}

    private static func decode<Claim: Decodable>(
        _ type: Claim.Type,
        _ key: CodingKeys,
        _ expected: String,
        from container: KeyedDecodingContainer<CodingKeys>
    ) throws(AuthorizationError) -> Claim? {
        do {
            return try container.decodeIfPresent(type, forKey: key)
        } catch {
            throw AuthorizationError(.invalidClaim, "The '\(key.rawValue)' claim must be \(expected).")
        }
    }

    private static func selectors(
        _ key: CodingKeys,
        from container: KeyedDecodingContainer<CodingKeys>
    ) throws(AuthorizationError) -> [TopicSelector] {
        guard let values = try Self.decode([String].self, key, "an array of topic selectors", from: container) else {
            return []
        }
        var selectors: [TopicSelector] = []
        selectors.reserveCapacity(values.count)
        for value in values {
            do {
                selectors.append(try TopicSelector(value))
            } catch {
                throw AuthorizationError(
                    .invalidClaim,
                    "The '\(key.rawValue)' claim holds an invalid topic selector '\(value.prefix(80))'."
                )
            }
        }
        return selectors
    }
}
