import EventBroker

/// The keys and checks of a ``TokenVerifier``: an HS256 secret, a PEM public key (RS256 or ES256), or both.
///
/// The algorithm a token may use follows from the keys alone: a secret allows HS256, an RSA public key RS256 and a
/// P-256 public key ES256. A token's `alg` header never chooses the key, so an RSA public key is never used as an
/// HMAC secret (the classic HS256/RS256 confusion).
///
/// ```
/// hmacSecret    publicKeyPEM     tokens accepted
/// "…32+ bytes"  nil              HS256
/// nil           RSA, 2048+ bits  RS256
/// nil           EC P-256         ES256
/// "…"           RSA or P-256     HS256 and the key's algorithm
/// ```
///
/// `clockSkewLeeway` is 5 seconds by default: `exp` and `nbf` are compared with the broker's clock give or take that
/// much, so a token minted by a host whose clock runs a little ahead is not refused as "not yet valid" in its first
/// second, while an expired token is accepted at most 5 seconds longer. Set it to `.zero` for exact comparisons.
public struct TokenVerifierConfiguration: Hashable, Sendable, CustomStringConvertible {
    /// The least number of bytes in an HS256 secret: the size of the SHA-256 output, as RFC 7518 §3.2 requires.
    public static let minimumSecretBytes = 32

    /// The HS256 shared secret (its UTF-8 bytes are the HMAC key), at least ``minimumSecretBytes`` long.
    public var hmacSecret: String?
    /// A PEM `PUBLIC KEY` (or `RSA PUBLIC KEY`): RSA of 2048 bits or more for RS256, or EC P-256 for ES256.
    public var publicKeyPEM: String?
    /// When set, a token's `aud` (a string or an array of strings) must contain it. When nil, `aud` is not checked.
    public var audience: String?
    /// How far `exp` and `nbf` may be off the broker's clock; zero or more.
    public var clockSkewLeeway: Duration
    /// Tokens longer than this are refused as malformed before anything is decoded.
    public var maxTokenBytes: Int

    public init(
        hmacSecret: String? = nil,
        publicKeyPEM: String? = nil,
        audience: String? = nil,
        clockSkewLeeway: Duration = .seconds(5),
        maxTokenBytes: Int = 8192
    ) {
        self.hmacSecret = hmacSecret
        self.publicKeyPEM = publicKeyPEM
        self.audience = audience
        self.clockSkewLeeway = clockSkewLeeway
        self.maxTokenBytes = maxTokenBytes
    }

    /// The configuration without its secret, for logs.
    public var description: String {
        var keys: [String] = []
        if self.hmacSecret != nil { keys.append("HS256 secret") }
        if self.publicKeyPEM != nil { keys.append("public key") }
        let audience = self.audience.map { "'\($0)'" } ?? "any"
        return "TokenVerifierConfiguration(keys: \(keys.joined(separator: ", ")), audience: \(audience), "
            + "leeway: \(self.clockSkewLeeway))"
    }

    /// Checks an HS256 secret: long enough, and not a PEM key pasted by mistake (an HMAC keyed with a public key is
    /// exactly what the HS256/RS256 confusion attack forges).
    static func validateSecret(_ secret: String) throws(AuthorizationError) {
        guard secret.utf8.count >= Self.minimumSecretBytes else {
            throw AuthorizationError(
                .invalidConfiguration,
                "The HS256 secret has \(secret.utf8.count) bytes; use at least \(Self.minimumSecretBytes)."
            )
        }
        guard !secret.contains("-----BEGIN") else {
            throw AuthorizationError(
                .invalidConfiguration,
                "The HS256 secret is a PEM key; give a public key as the public key, and a random secret for HS256."
            )
        }
    }
}

extension Duration {
    /// The duration in seconds, as `Date` arithmetic wants it.
    var timeInterval: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }
}
