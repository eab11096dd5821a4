/// What a publisher asks the bus to deliver.
public struct PublishRequest: Sendable {
    public var topics: [TopicName]
    public var eventType: String?
    /// UTF-8 text; compact JSON text when `dataIsJSON`.
    public var data: String
    public var dataIsJSON: Bool
    public var retryMilliseconds: Int?
    public var isPrivate: Bool
    /// Delivered live but never stored in history, so never replayed (typing indicators, presence).
    public var isEphemeral: Bool
    public var idempotencyKey: String?

    public init(
        topics: [TopicName],
        data: String,
        dataIsJSON: Bool = false,
        eventType: String? = nil,
        retryMilliseconds: Int? = nil,
        isPrivate: Bool = false,
        isEphemeral: Bool = false,
        idempotencyKey: String? = nil
    ) {
        self.topics = topics
        self.eventType = eventType
        self.data = data
        self.dataIsJSON = dataIsJSON
        self.retryMilliseconds = retryMilliseconds
        self.isPrivate = isPrivate
        self.isEphemeral = isEphemeral
        self.idempotencyKey = idempotencyKey
    }
}

/// Who a direct message goes to.
public enum DirectRecipient: Hashable, Sendable {
    case client(ClientID)
    case user(String)
}

/// The bus's answer to a publish.
public struct PublishResult: Hashable, Sendable {
    public let id: EventID
    public let topics: [TopicName]
    /// Subscribers the event was handed to.
    public let subscribers: Int
    /// True when an earlier publish with the same `Idempotency-Key` answered, and nothing was delivered again.
    public var isReplay: Bool

    public init(id: EventID, topics: [TopicName], subscribers: Int, isReplay: Bool = false) {
        self.id = id
        self.topics = topics
        self.subscribers = subscribers
        self.isReplay = isReplay
    }
}

/// Told to a resuming client whose history does not reach back to its last event id.
public struct HistoryGap: Hashable, Sendable {
    /// The id the client resumed from, as it sent it.
    public let lastEventID: String
    /// The oldest retained event on the selected topics, if any.
    public let oldestAvailable: EventID?
}

/// What a new subscription starts with: events to replay, and a gap notice if history fell short.
public struct SubscriptionStart: Sendable {
    public let replay: [BrokerEvent]
    public let gap: HistoryGap?
    /// The last id issued when the subscription was registered: replayed events are at or below it, live ones above.
    public let handoffID: EventID
}

/// A page of history for polling clients.
public struct HistoryPage: Sendable {
    public let events: [BrokerEvent]
    public let gap: HistoryGap?
    /// Where the next poll should continue from: the last event of the page, or the position polled from.
    public let nextAfter: EventID
}

/// One topic as the broker sees it now.
public struct TopicInfo: Hashable, Sendable {
    public let topic: TopicName
    public let subscribers: Int
    public let lastEventID: EventID?
    public let historySize: Int
    public let oldestEventID: EventID?
    /// Subscribers present on the topic (those naming it exactly; see ``Presence``).
    public let memberCount: Int
}

/// Counters for health and diagnostics.
public struct BrokerStats: Hashable, Sendable {
    public let connections: [Transport: Int]
    /// Selectors over all subscribers.
    public let subscriptions: Int
    public let topics: Int
    public let historyEvents: Int
    public let historyBytes: Int
    public let lastEventID: EventID?
}
