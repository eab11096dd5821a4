#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Who a request or a stream acts for, and so what the bus's policy lets it do.
///
/// ```
/// principal                      publish             subscribe            read private events
/// open (no key configured)       any topic           any selector         all
/// anonymous(maySubscribe: true)  refused (401)       any selector         none
/// anonymous(maySubscribe: false) refused (401)       refused (401)        none
/// token                          broker.publish      broker.subscribe     those on a topic its broker.subscribe
///                                matches the topic   covers the selector  selectors match
/// ```
///
/// Broadcasts need a `broker.publish` selector matching `$broadcast`, and direct messages one matching `$direct`;
/// nothing else can publish to a reserved (`$`) topic. A value type: share it freely between threads.
public enum Principal: Sendable {
    /// No key is configured: the broker is open to everyone, private events included.
    case open
    /// A key is configured and the client gave no token. With `maySubscribe` it may read public events.
    case anonymous(maySubscribe: Bool)
    /// A verified token. Boxed (`indirect`), so that every stream, most with no token, keeps one word for its
    /// principal instead of the token's seventy-odd bytes inline.
    indirect case token(AccessToken)

    /// The pseudo-topic a token's `broker.publish` selectors must match to send direct messages.
    public static let directMessages = TopicName(unchecked: "$direct")

    /// The user id direct messages to `{"user": …}` reach: the token's `sub`.
    public var userID: String? {
        if case .token(let token) = self { return token.subject }
        return nil
    }

    /// When the token stops being accepted (`exp` plus the verifier's leeway); a stream opened with it ends then.
    public var acceptedUntil: Date? {
        if case .token(let token) = self { return token.acceptedUntil }
        return nil
    }

    /// Checks that every topic of one publish (or `$broadcast`, or ``directMessages``) may be published to.
    public func authorizePublish(to topics: [TopicName]) throws(AuthorizationError) {
        switch self {
        case .open:
            return
        case .anonymous:
            throw AuthorizationError(.missingToken, "Publishing needs a token with a 'broker.publish' claim.")
        case .token(let token):
            for topic in topics where !token.mayPublish(to: topic) {
                throw AuthorizationError(
                    .forbidden, "The token's 'broker.publish' selectors do not allow publishing to '\(topic)'.")
            }
        }
    }

    /// Checks that a stream, a history query or a WebSocket `subscribe` may select `selectors`.
    public func authorizeSubscribe(to selectors: [TopicSelector]) throws(AuthorizationError) {
        switch self {
        case .open, .anonymous(maySubscribe: true):
            return
        case .anonymous(maySubscribe: false):
            throw AuthorizationError(.missingToken, "Subscribing needs a token with a 'broker.subscribe' claim.")
        case .token(let token):
            for selector in selectors where !token.maySubscribe(to: selector) {
                throw AuthorizationError(
                    .forbidden, "The token's 'broker.subscribe' selectors do not cover '\(selector)'.")
            }
        }
    }

    /// Whether `event` may reach this principal: every public event, and a private one only when a
    /// `broker.subscribe` selector matches one of its topics (or the broker is open).
    ///
    /// Hot path: one branch for a public event; allocation-free.
    @inline(__always)
    public func mayRead(_ event: BrokerEvent) -> Bool {
        guard event.isPrivate else { return true }
        switch self {
        case .open: return true
        case .anonymous: return false
        case .token(let token): return token.mayRead(event.topics)
        }
    }

    /// Whether the topic list and a topic's details may show `topic`: always for an open broker or a permitted
    /// anonymous reader, and for a token when a `broker.subscribe` selector matches it.
    public func mayView(_ topic: TopicName) -> Bool {
        switch self {
        case .open, .anonymous(maySubscribe: true): return true
        case .anonymous(maySubscribe: false): return false
        case .token(let token): return token.mayRead([topic])
        }
    }
}
