import EventBroker
import NIOHTTP1

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Finds a request's bearer token and turns it into the ``Principal`` the bus's policy reads, or into the `401`
/// that answers it.
///
/// The token comes from the first of these the request has; a later source is not looked at, so a request cannot
/// carry two different tokens:
/// ```
/// Authorization: Bearer <token>       scripts, backends, WebSocket clients that can set headers
/// ?access_token=<token>               EventSource and browser WebSockets, which cannot set headers
/// Cookie: access_token=<token>        same-site browser pages
/// ```
/// Without a configured verifier the broker is open and every request is ``Principal/open``. With one, a request
/// without a token is ``Principal/anonymous(maySubscribe:)``, and a bad token is refused, never treated as absent.
struct RequestAuthenticator: Sendable {
    /// The query parameter and the cookie that may carry the token.
    static let parameterName = "access_token"

    let verifier: (any AccessTokenVerifying)?
    let allowsAnonymousSubscribers: Bool

    init(verifier: (any AccessTokenVerifying)?, allowsAnonymousSubscribers: Bool) {
        self.verifier = verifier
        self.allowsAnonymousSubscribers = allowsAnonymousSubscribers
    }

    init(_ configuration: BrokerConfiguration) {
        self.init(
            verifier: configuration.tokenVerifier,
            allowsAnonymousSubscribers: configuration.allowsAnonymousSubscribers)
    }

    /// Whom the request acts for. Throws the `401` for a malformed, forged, expired or otherwise refused token.
    func principal(_ head: HTTPRequestHead, target: RequestTarget, now: Date? = nil) throws(APIError) -> Principal {
        guard let verifier = self.verifier else { return .open }
        guard let token = try Self.token(head.headers, target: target) else {
            return .anonymous(maySubscribe: self.allowsAnonymousSubscribers)
        }
        do {
            return .token(try verifier.verify(token, now: now ?? Date()))
        } catch {
            throw APIError(error)
        }
    }

    /// The token as sent, or nil when the request carries none.
    static func token(_ headers: HTTPHeaders, target: RequestTarget) throws(APIError) -> String? {
        if let authorization = headers.first(name: "authorization") {
            let value = authorization.trimmingASCIIWhitespace()
            guard value.utf8.count > 7, value.prefix(7).lowercased() == "bearer " else {
                throw APIError(
                    AuthorizationError(.malformedToken, "The Authorization header must be 'Bearer <token>'."))
            }
            return try Self.nonEmpty(
                String(value.dropFirst(7)).trimmingASCIIWhitespace(), source: "Authorization header")
        }
        if let parameter = target.first(Self.parameterName) {
            return try Self.nonEmpty(parameter, source: "access_token parameter")
        }
        for header in headers["cookie"] {
            for pair in header.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " || $0 == "\t" }
                guard let equals = trimmed.firstIndex(of: "="), trimmed[..<equals] == Self.parameterName[...] else {
                    continue
                }
                return try Self.nonEmpty(
                    String(trimmed[trimmed.index(after: equals)...]), source: "access_token cookie")
            }
        }
        return nil
    }

    /// An empty token is a client's mistake (an unset variable), refused rather than taken for no token.
    private static func nonEmpty(_ token: String, source: String) throws(APIError) -> String {
        guard !token.isEmpty else {
            throw APIError(AuthorizationError(.malformedToken, "The \(source) is empty."))
        }
        return token
    }
}
