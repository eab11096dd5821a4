import Crypto
import CryptoExtras
import Foundation

/// JWTs for the security tests, signed with swift-crypto directly so that a test can forge any header, payload and
/// signature: unsigned, signed with the wrong key or algorithm, expired, for another audience.
enum SecurityTokens {
    static let secret = "security-suite-secret-0123456789abcdef"
    static let otherSecret = "another-suite-secret-0123456789abcdef"
    static let rsaKey = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let otherRSAKey = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static var rsaPublicKeyPEM: String { Self.rsaKey.publicKey.pemRepresentation }

    enum Signer {
        /// HS256 with a secret (any bytes: the HS/RS confusion signs with a public key's PEM).
        case hmac(String)
        case rsa(_RSA.Signing.PrivateKey)
        /// No signature: `header.payload.`
        case none
    }

    /// `base64url(header).base64url(payload).base64url(signature)`.
    static func token(header: String, payload: String, signer: Signer) throws -> String {
        let input = Self.base64URL(Data(header.utf8)) + "." + Self.base64URL(Data(payload.utf8))
        switch signer {
        case .hmac(let secret):
            let code = HMAC<SHA256>.authenticationCode(
                for: Data(input.utf8), using: SymmetricKey(data: Data(secret.utf8)))
            return input + "." + Self.base64URL(Data(code))
        case .rsa(let key):
            let signature = try key.signature(for: Data(input.utf8), padding: .insecurePKCS1v1_5)
            return input + "." + Self.base64URL(signature.rawRepresentation)
        case .none:
            return input + "."
        }
    }

    /// Claims as a JSON object: `exp` an hour from now unless given, the selector lists, and any extra members.
    static func claims(
        publish: [String] = [], subscribe: [String] = [], subject: String? = "tester", expiresIn: Int? = 3600,
        extra: String = ""
    ) -> String {
        var members: [String] = []
        if let subject { members.append(#""sub":"\#(subject)""#) }
        if let expiresIn { members.append(#""exp":\#(Int(Date().timeIntervalSince1970) + expiresIn)"#) }
        members.append(#""broker.publish":[\#(publish.map { "\"\($0)\"" }.joined(separator: ","))]"#)
        members.append(#""broker.subscribe":[\#(subscribe.map { "\"\($0)\"" }.joined(separator: ","))]"#)
        if !extra.isEmpty { members.append(extra) }
        return "{" + members.joined(separator: ",") + "}"
    }

    /// A valid HS256 token with the suite's secret.
    static func hs256(
        publish: [String] = [], subscribe: [String] = [], subject: String? = "tester", expiresIn: Int? = 3600,
        extra: String = ""
    ) throws -> String {
        try Self.token(
            header: #"{"alg":"HS256","typ":"JWT"}"#,
            payload: Self.claims(
                publish: publish, subscribe: subscribe, subject: subject, expiresIn: expiresIn, extra: extra),
            signer: .hmac(Self.secret))
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
