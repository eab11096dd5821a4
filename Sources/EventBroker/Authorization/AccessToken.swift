#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What a verified token grants: the topics its bearer may publish to and subscribe to, and until when.
///
/// It comes from ``TokenVerifier/verify(_:now:)``, which has checked the signature, `exp`, `nbf` and `aud`; the
/// policy methods only read the `broker.publish` and `broker.subscribe` selectors:
///
/// ```
/// {"sub": "shop-eu", "exp": 1767225600,
///  "broker.publish":   ["orders/eu/*"],
///  "broker.subscribe": ["orders/**", "$presence/orders"]}
///
/// mayPublish(to: orders/eu/42)          true   orders/eu/* matches it
/// maySubscribe(to: orders/eu/*)         true   orders/** covers every topic it can match
/// maySubscribe(to: **)                  false  nothing granted covers every topic
/// mayRead([orders/us/1, billing/7])     true   orders/** matches one of the event's topics
/// ```
///
/// A value type with no references: share it freely between threads. The policy methods never allocate.
public struct AccessToken: Hashable, Sendable {
    /// The `sub` claim: who the token was issued to, for logs. Not used by the policy.
    public var subject: String?
    /// The `exp` claim, when the token has one. A stream opened with the token may outlive it: whether to close
    /// the stream then is the server's decision.
    public var expiresAt: Date?
    /// Until when the verifier accepts the token: `exp` plus its clock-skew leeway (nil without `exp`). A stream
    /// opened with the token ends then, so that a client is never let back in with the token it was cut for.
    public var acceptedUntil: Date?
    /// The `aud` claim, one or more audiences; empty when absent.
    public var audience: [String]
    /// The `broker.publish` claim: a topic may be published to when one of these matches it.
    public var publishSelectors: [TopicSelector]
    /// The `broker.subscribe` claim: a selector may be subscribed to when one of these covers it.
    public var subscribeSelectors: [TopicSelector]

    public init(
        subject: String? = nil,
        expiresAt: Date? = nil,
        acceptedUntil: Date? = nil,
        audience: [String] = [],
        publishSelectors: [TopicSelector] = [],
        subscribeSelectors: [TopicSelector] = []
    ) {
        self.subject = subject
        self.expiresAt = expiresAt
        self.acceptedUntil = acceptedUntil ?? expiresAt
        self.audience = audience
        self.publishSelectors = publishSelectors
        self.subscribeSelectors = subscribeSelectors
    }

    /// Whether the bearer may publish to `topic`: some `broker.publish` selector matches it.
    ///
    /// Reserved (`$`) topics are matched like any other here (only a selector naming them does); the broker refuses
    /// to publish to them whatever the token says.
    public func mayPublish(to topic: TopicName) -> Bool {
        for selector in self.publishSelectors where selector.matches(topic) {
            return true
        }
        return false
    }

    /// Whether the bearer may subscribe to `selector`: some `broker.subscribe` selector covers it, that is matches
    /// every topic that `selector` can match (see ``TopicSelector/covers(_:)``).
    public func maySubscribe(to selector: TopicSelector) -> Bool {
        for granted in self.subscribeSelectors where granted.covers(selector) {
            return true
        }
        return false
    }

    /// Whether the bearer may read a private event published on `topics`: some `broker.subscribe` selector matches
    /// one of them.
    ///
    /// Allocation-free and at most `topics.count × subscribeSelectors.count` matches, so it can run per delivery.
    /// A subscriber whose every selector passed ``maySubscribe(to:)`` may read every event delivered through them.
    public func mayRead(_ topics: [TopicName]) -> Bool {
        for topic in topics {
            for selector in self.subscribeSelectors where selector.matches(topic) {
                return true
            }
        }
        return false
    }
}
