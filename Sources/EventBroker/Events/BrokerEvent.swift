import NIOCore

/// One published event, immutable and shared: history, every shard and every subscriber hold the same instance,
/// and its `sseChunk` is the exact bytes each SSE stream writes.
public final class BrokerEvent: Sendable {
    public let id: EventID
    /// One or more topics; a subscriber that selects several of them still receives the event once.
    public let topics: [TopicName]
    public let eventType: String?
    public let data: String
    /// Whether `data` is a compact JSON text (published as JSON) rather than plain text.
    public let dataIsJSON: Bool
    /// Publish time, milliseconds since 1970.
    public let timeMilliseconds: UInt64
    public let retryMilliseconds: Int?
    public let isPrivate: Bool
    /// The complete HTTP chunk of the SSE frame, encoded once at publish.
    public let sseChunk: ByteBuffer

    /// Bytes this event costs in history (payload plus a fixed overhead), for the history byte bound.
    public var historyCost: Int { self.sseChunk.readableBytes + 128 }

    public convenience init(
        id: EventID,
        topics: [TopicName],
        eventType: String?,
        data: String,
        dataIsJSON: Bool,
        timeMilliseconds: UInt64,
        retryMilliseconds: Int?,
        isPrivate: Bool,
        allocator: ByteBufferAllocator
    ) {
        self.init(
            id: id, topics: topics, eventType: eventType, data: data, dataIsJSON: dataIsJSON,
            timeMilliseconds: timeMilliseconds, retryMilliseconds: retryMilliseconds, isPrivate: isPrivate,
            frame: SSEFrame.prepare(event: eventType, data: data, retry: retryMilliseconds, allocator: allocator))
    }

    /// - Parameters:
    ///   - frame: The event's SSE frame without its id, prepared from the same `eventType`, `data` and
    ///     `retryMilliseconds` (the bus prepares it before taking its lock).
    public init(
        id: EventID,
        topics: [TopicName],
        eventType: String?,
        data: String,
        dataIsJSON: Bool,
        timeMilliseconds: UInt64,
        retryMilliseconds: Int?,
        isPrivate: Bool,
        frame: consuming SSEFrame.PreparedEvent
    ) {
        self.id = id
        self.topics = topics
        self.eventType = eventType
        self.data = data
        self.dataIsJSON = dataIsJSON
        self.timeMilliseconds = timeMilliseconds
        self.retryMilliseconds = retryMilliseconds
        self.isPrivate = isPrivate
        self.sseChunk = frame.finish(id: id)
    }

    /// Whether any of the event's topics is selected by any of `selectors`.
    public func isSelected(by selectors: [TopicSelector]) -> Bool {
        for topic in self.topics {
            for selector in selectors where selector.matches(topic) { return true }
        }
        return false
    }
}
