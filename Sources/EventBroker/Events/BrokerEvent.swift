import NIOCore

/// One published event, immutable and shared: history, every shard and every subscriber hold the same instance,
/// and its `sseChunk` is the exact bytes each SSE stream writes, its `webSocketFrame` those each WebSocket writes.
public final class BrokerEvent: Sendable {
    public let id: EventID
    /// One or more topics; a subscriber that selects several of them still receives the event once.
    public let topics: [TopicName]
    public let eventType: String?
    /// The payload. Read from `sseChunk` when the chunk holds it verbatim (one line, the usual case), so history
    /// keeps it once rather than twice.
    public var data: String {
        self.separateData ?? SSEFrame.data(in: self.sseChunk, bytes: Int(self.verbatimDataBytes))
    }
    /// The data when the SSE chunk does not hold it verbatim (it has line breaks); nil otherwise.
    private let separateData: String?
    private let verbatimDataBytes: UInt32
    /// Whether `data` is a compact JSON text (published as JSON) rather than plain text.
    public let dataIsJSON: Bool
    /// Publish time, milliseconds since 1970.
    public let timeMilliseconds: UInt64
    public let retryMilliseconds: Int?
    /// Publish time on the monotonic clock (`NIODeadline`'s uptime), for the publish-to-write latency.
    public let publishedUptimeNanoseconds: UInt64
    public let isPrivate: Bool
    /// The complete HTTP chunk of the SSE frame, encoded once at publish.
    public let sseChunk: ByteBuffer
    /// The complete WebSocket frame of the `event` message, encoded once at publish when WebSocket clients were
    /// connected; nil otherwise (``webSocketFrame(allocator:)`` then encodes it on demand, for a replay).
    public let webSocketFrame: ByteBuffer?

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
            frame: SSEFrame.prepare(event: eventType, data: data, retry: retryMilliseconds, allocator: allocator),
            webSocketFrame: nil)
    }

    /// - Parameters:
    ///   - frame: The event's SSE frame without its id, prepared from the same `eventType`, `data` and
    ///     `retryMilliseconds` (the bus prepares it before taking its lock).
    ///   - webSocketFrame: Likewise the WebSocket frame, or nil to encode it only when asked.
    public init(
        id: EventID,
        topics: [TopicName],
        eventType: String?,
        data: String,
        dataIsJSON: Bool,
        timeMilliseconds: UInt64,
        retryMilliseconds: Int?,
        isPrivate: Bool,
        frame: consuming SSEFrame.PreparedEvent,
        webSocketFrame: consuming WebSocketEventFrame.PreparedEvent?
    ) {
        self.id = id
        self.topics = topics
        self.eventType = eventType
        if frame.holdsDataVerbatim && data.utf8.count <= UInt32.max {
            self.separateData = nil
            self.verbatimDataBytes = UInt32(data.utf8.count)
        } else {
            self.separateData = data
            self.verbatimDataBytes = 0
        }
        self.dataIsJSON = dataIsJSON
        self.timeMilliseconds = timeMilliseconds
        self.retryMilliseconds = retryMilliseconds
        self.isPrivate = isPrivate
        self.publishedUptimeNanoseconds = NIODeadline.now().uptimeNanoseconds
        self.sseChunk = frame.finish(id: id)
        switch consume webSocketFrame {
        case .some(let prepared): self.webSocketFrame = prepared.finish(id: id)
        case .none: self.webSocketFrame = nil
        }
    }

    /// The WebSocket frame: the one encoded at publish, or a new one for an event published while no WebSocket was
    /// connected (only replays need that).
    public func webSocketFrame(allocator: ByteBufferAllocator) -> ByteBuffer {
        if let frame = self.webSocketFrame { return frame }
        return WebSocketEventFrame.encode(
            id: self.id, topics: self.topics, eventType: self.eventType, data: self.data, dataIsJSON: self.dataIsJSON,
            allocator: allocator)
    }

    /// Whether any of the event's topics is selected by any of `selectors`.
    public func isSelected(by selectors: [TopicSelector]) -> Bool {
        for topic in self.topics {
            for selector in selectors where selector.matches(topic) { return true }
        }
        return false
    }
}
