/// One benchmark run: who connects, what is published, and how fast.
///
/// Paths and the publish body are templates, so the same run can drive another broker:
/// `{topic}` is replaced by the topic name and `{data}` by the event's payload.
/// ```
/// EventBroker (defaults)  subscribe /api/events?topic={topic}   publish /api/events/publish?topic={topic}
/// nchan                   subscribe /sub/{topic}                publish /pub/{topic}
/// ```
public struct BenchConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Subscribers, spread round-robin over the topics.
    public var subscribers: Int
    /// How many of the subscribers use a WebSocket (the first ones, so they too cover the topics evenly); the rest
    /// use SSE.
    public var webSocketSubscribers: Int
    public var topics: Int
    /// Events to publish in all (spread round-robin over the topics).
    public var events: Int
    /// Bytes of each event's data (at least the header the bench writes into it, about 40 bytes).
    public var payloadBytes: Int
    /// Events per second over all publishers; 0 publishes as fast as the broker answers.
    public var rate: Int
    /// Keep-alive publishing connections.
    public var publishers: Int
    public var subscribePath: String
    /// The WebSocket subscribers' upgrade path; `{topic}` is replaced.
    public var webSocketPath: String
    public var publishPath: String
    /// The publish body; `{data}` is the payload (digits, spaces and `x`: it needs no escaping in JSON) and `{topic}`
    /// the topic.
    public var bodyTemplate: String
    public var contentType: String
    /// Processes whose memory and CPU are reported (the broker; nginx's master and workers).
    public var pids: [Int32]
    /// Subscriber connections opened at once while connecting.
    public var connectConcurrency: Int
    /// How long to wait for the last deliveries after the last publish.
    public var drainTimeout: Duration
    /// A prefix that makes this run's topics unique.
    public var topicPrefix: String
    /// Client event loop threads.
    public var threads: Int
    /// Print a progress line while running (when standard error is a terminal).
    public var showProgress: Bool

    public init(
        host: String = "127.0.0.1", port: Int = 8080, subscribers: Int = 100, webSocketSubscribers: Int = 0,
        topics: Int = 1, events: Int = 1000, payloadBytes: Int = 128, rate: Int = 0, publishers: Int = 4,
        subscribePath: String = "/api/events?topic={topic}", webSocketPath: String = "/api/ws?topic={topic}",
        publishPath: String = "/api/events/publish?topic={topic}",
        bodyTemplate: String = "{data}", contentType: String = "text/plain", pids: [Int32] = [],
        connectConcurrency: Int = 256, drainTimeout: Duration = .seconds(10), topicPrefix: String = "bench",
        threads: Int = 1, showProgress: Bool = true
    ) {
        self.host = host
        self.port = port
        self.subscribers = subscribers
        self.webSocketSubscribers = min(max(0, webSocketSubscribers), subscribers)
        self.topics = max(1, topics)
        self.events = events
        self.payloadBytes = payloadBytes
        self.rate = rate
        self.publishers = max(1, publishers)
        self.subscribePath = subscribePath
        self.webSocketPath = webSocketPath
        self.publishPath = publishPath
        self.bodyTemplate = bodyTemplate
        self.contentType = contentType
        self.pids = pids
        self.connectConcurrency = max(1, connectConcurrency)
        self.drainTimeout = drainTimeout
        self.topicPrefix = topicPrefix
        self.threads = max(1, threads)
        self.showProgress = showProgress
    }

    func topic(_ index: Int) -> String { "\(self.topicPrefix)-\(index)" }

    func path(_ template: String, topic: String) -> String {
        template.replacingOccurrences(of: "{topic}", with: topic)
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

extension Substring {
    func range(of target: String) -> Range<Substring.Index>? {
        guard let first = target.first else { return nil }
        var index = self.startIndex
        while index < self.endIndex {
            if self[index] == first, self[index...].hasPrefix(target) {
                return index..<self.index(index, offsetBy: target.count)
            }
            index = self.index(after: index)
        }
        return nil
    }
}
