import BrokerJWT
import Crypto
import CryptoExtras
import EventBroker
import Foundation
import JWTKit

/// Keys made once per test run, and tokens signed with them by jwt-kit's algorithms: any header and payload,
/// so that tests can forge exactly the token they need.
enum TestTokens {
    /// A fixed clock reading: 2026-01-01T00:00:00Z.
    static let now = Date(timeIntervalSince1970: 1_767_225_600)
    static let secret = "broker-test-secret-0123456789abcdef"
    static let otherSecret = "another-test-secret-0123456789abcdef"
    static let rsaKey = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let p256Key = P256.Signing.PrivateKey()
    static let otherP256Key = P256.Signing.PrivateKey()
    static var rsaPublicKeyPEM: String { Self.rsaKey.publicKey.pemRepresentation }
    static var p256PublicKeyPEM: String { Self.p256Key.publicKey.pemRepresentation }

    /// A jwt-kit algorithm for one key.
    enum Signer: Sendable {
        case hmac(String)
        case rsa
        case p256(P256.Signing.PrivateKey)

        func algorithm() async throws -> any JWTAlgorithm {
            let keys = JWTKeyCollection()
            switch self {
            case .hmac(let secret):
                await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            case .rsa:
                await keys.add(rsa: try Insecure.RSA.PrivateKey(backing: TestTokens.rsaKey), digestAlgorithm: .sha256)
            case .p256(let key):
                await keys.add(ecdsa: try ES256PrivateKey(pem: key.pemRepresentation))
            }
            return try await keys.getKey()
        }
    }

    /// `base64url(header).base64url(payload).base64url(signature)`, signed by `signer` (the test secret unless
    /// told) over the first two parts; with a nil signer the signature part is empty.
    static func token(
        header: String,
        payload: String,
        signer: Signer? = .hmac(TestTokens.secret)
    ) async throws -> String {
        let signingInput = Self.base64URL(Array(header.utf8)) + "." + Self.base64URL(Array(payload.utf8))
        guard let signer else { return signingInput + "." }
        let signature = try await signer.algorithm().sign(Array(signingInput.utf8))
        return signingInput + "." + Self.base64URL(signature)
    }

    /// An HS256 token with the test secret.
    static func hs256(_ payload: String, secret: String = TestTokens.secret) async throws -> String {
        try await Self.token(header: #"{"alg":"HS256","typ":"JWT"}"#, payload: payload, signer: .hmac(secret))
    }

    static func verifier(
        secret: String? = TestTokens.secret,
        publicKeyPEM: String? = nil,
        audience: String? = nil,
        leeway: Duration = .seconds(5)
    ) async throws -> TokenVerifier {
        try await TokenVerifier(
            configuration: TokenVerifierConfiguration(
                hmacSecret: secret, publicKeyPEM: publicKeyPEM, audience: audience, clockSkewLeeway: leeway)
        )
    }

    /// Seconds since 1970, `offset` seconds from ``now``.
    static func epoch(_ offset: Int) -> Int { Int(Self.now.timeIntervalSince1970) + offset }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The JSON text of a token's payload, for tests that check what was minted.
    static func payloadJSON(of token: String) throws -> String {
        let part = String(token.split(separator: ".")[1])
        let padded =
            part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            + String(repeating: "=", count: (4 - part.count % 4) % 4)
        return String(decoding: Data(base64Encoded: padded) ?? Data(), as: UTF8.self)
    }
}
