/// Bounds on retained history. Whichever bound is reached first evicts the oldest events.
public struct HistoryLimits: Hashable, Sendable {
    /// Events kept per topic.
    public var eventsPerTopic: Int
    /// Bytes kept over all topics (frame bytes plus a fixed overhead per event).
    public var maxBytes: Int
    /// Events older than this are dropped; nil keeps them until a count or byte bound evicts them.
    public var maxAge: Duration?

    public init(eventsPerTopic: Int = 1000, maxBytes: Int = 64 * 1024 * 1024, maxAge: Duration? = .seconds(3600)) {
        self.eventsPerTopic = max(0, eventsPerTopic)
        self.maxBytes = max(0, maxBytes)
        self.maxAge = maxAge
    }
}
