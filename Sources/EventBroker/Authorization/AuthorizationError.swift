/// Why a token was refused, or why a verifier could not be configured; the HTTP layer answers 401 for a token code.
///
/// Each refusal has its own code so that logs and clients can tell an expired token from a forged one. Messages name
/// the failing claim or header field but never echo the token, the secret or the key, so they are safe to send back.
/// Codes are `static let`s over a private enum, like ``BrokerError``, so new ones can be added without breaking
/// exhaustive switches.
///
/// ```
/// code                   raised when
/// malformed_token        not three base64url parts, not JSON objects, no `alg`, a `crit` header, too long
/// unsecured_token        `alg` is `none`
/// algorithm_not_allowed  `alg` is not one the configured keys allow (HS256 with only a public key, and so on)
/// invalid_signature      the signature does not verify with the configured key
/// token_expired          `exp` is past (beyond the leeway)
/// token_not_yet_valid    `nbf` is ahead (beyond the leeway)
/// wrong_audience         an audience is configured and `aud` does not contain it
/// invalid_claim          a claim has the wrong type, or a selector in `broker.publish`/`broker.subscribe` is invalid
/// invalid_configuration  the verifier's or issuer's keys are unusable (never a token's fault)
/// missing_token          authorization is configured and the request carries no token
/// forbidden              the token is valid but does not grant this topic (the only code that is not a 401)
/// ```
public struct AuthorizationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The machine-readable reason, spelled in snake_case like ``BrokerError/Code``.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case malformedToken = "malformed_token"
            case unsecuredToken = "unsecured_token"
            case algorithmNotAllowed = "algorithm_not_allowed"
            case invalidSignature = "invalid_signature"
            case tokenExpired = "token_expired"
            case tokenNotYetValid = "token_not_yet_valid"
            case wrongAudience = "wrong_audience"
            case invalidClaim = "invalid_claim"
            case invalidConfiguration = "invalid_configuration"
            case missingToken = "missing_token"
            case forbidden = "forbidden"
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The token is not a compact JWS of a JSON header and a JSON object payload.
        public static let malformedToken = Code(.malformedToken)
        /// The header says `alg: none`: an unsigned token is never accepted.
        public static let unsecuredToken = Code(.unsecuredToken)
        /// The header's `alg` is not allowed by the configured keys.
        public static let algorithmNotAllowed = Code(.algorithmNotAllowed)
        /// The signature does not verify.
        public static let invalidSignature = Code(.invalidSignature)
        /// `exp` lies in the past.
        public static let tokenExpired = Code(.tokenExpired)
        /// `nbf` lies in the future.
        public static let tokenNotYetValid = Code(.tokenNotYetValid)
        /// `aud` does not name the configured audience.
        public static let wrongAudience = Code(.wrongAudience)
        /// A claim the broker reads has the wrong type or an invalid value.
        public static let invalidClaim = Code(.invalidClaim)
        /// The keys given to a verifier or an issuer are unusable.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// Authorization is configured and the request carries no token.
        public static let missingToken = Code(.missingToken)
        /// The token is valid but its selectors do not grant what was asked.
        public static let forbidden = Code(.forbidden)

        public var description: String { self.base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(self.code): \(self.message)" }
}
