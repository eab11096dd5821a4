#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Turns a bearer token into the ``AccessToken`` it grants, synchronously, on whatever thread asks.
///
/// The server calls it once per request or stream opened, never per event, on an event loop, so it must not block.
/// `BrokerJWT.TokenVerifier` verifies JSON Web Tokens; the protocol keeps the bus and the HTTP server free of any
/// cryptography library.
public protocol AccessTokenVerifying: Sendable {
    /// - Parameters:
    ///   - token: The token as received: from `Authorization: Bearer`, the `access_token` parameter or a cookie.
    ///   - now: The time to check the token's validity against.
    /// - Throws: ``AuthorizationError`` saying why the token is refused.
    func verify(_ token: String, now: Date) throws(AuthorizationError) -> AccessToken
}
