/// The log several brokers share when they run as one cluster: one id sequence, one table of events, and a signal
/// when it grows (PostgreSQL's in `BrokerPostgres`).
///
/// ```
/// node A: publish ─► append(batch) ─► ids a…b, committed ─► signal "through b" ─┬─► node A reads (cursor, b] ─► shards
///                                                                             ├─► node B reads (cursor, b] ─► shards
///                                                                             └─► node C …
/// ```
/// Every node, the publishing one included, delivers what it reads back from the log, in id order, so every node's
/// history holds the same events under the same ids, and a `Last-Event-ID` from one node means the same on every
/// other. The log assigns ids in commit order: when a node has read id `n`, every id below `n` that will ever exist
/// is already readable, so reading "after my cursor" never skips an event committed late.
///
/// The broker calls a log from its own threads (one appends, one reads), never from an event loop, so calls may
/// block. They throw `StoreError` (`io` when the database cannot be reached) and may be called again after one.
public protocol ClusterLog: AnyObject, Sendable {
    /// This node's name in the cluster, unique among running nodes.
    var nodeID: String { get }

    /// What the log holds now: retained events (not live-only records), ascending by id, the newest id, the first
    /// one ever, the retention horizons and unexpired idempotency keys. Called once, before anything else.
    func load() throws(StoreError) -> StoredState

    /// Appends `appends` in one transaction and returns one outcome per append, in order. Ids are assigned in the
    /// order given, above every id committed before; a publish whose idempotency key the log already holds gets no
    /// id and no row, and its outcome is the first publish's answer.
    func append(_ appends: [ClusterAppend]) throws(StoreError) -> [ClusterAppendOutcome]

    /// Records with ids in `(after, through]`, ascending, at most `limit` of them.
    func records(after: EventID, through: EventID, limit: Int) throws(StoreError) -> [ClusterRecord]

    /// The newest id committed, by any node.
    func lastID() throws(StoreError) -> EventID

    /// Forgets what retention dropped from the in-memory history, as ``EventStore/applyRetention(topicHorizons:globalHorizon:nowMilliseconds:)``
    /// does, plus live-only records older than a minute and expired idempotency keys. One node at a time: returns
    /// false, having done nothing, when another node is applying retention now.
    func applyRetention(
        topicHorizons: [TopicName: EventID], globalHorizon: EventID, nowMilliseconds: UInt64
    ) throws(StoreError) -> Bool

    /// Records this node's connected clients that changed: `joined` replaces what was known of each (their
    /// selectors may have changed), `left` removes them. Other nodes learn of it through ``ClusterSignal/membersChanged``.
    func updateMembers(joined: [ClusterMember], left: [ClientID]) throws(StoreError)

    /// The clients connected to the other live nodes (those seen in the last few seconds), and marks this node as
    /// live.
    func remoteMembers() throws(StoreError) -> [ClusterMember]

    /// Starts delivering signals (on a thread of the log's own) until ``close()``, reconnecting as needed.
    func listen(_ handler: @escaping @Sendable (ClusterSignal) -> Void)

    /// Removes this node and its members, and closes the connections. Nothing is called after it.
    func close()
}

/// What a log tells its nodes between their reads.
public enum ClusterSignal: Hashable, Sendable {
    /// Events through this id are committed (by any node).
    case appended(through: EventID)
    /// The clients of some node changed.
    case membersChanged
    /// Listening stopped (the connection dropped): signals may be missed until ``listening``.
    case interrupted
    /// Listening (again): whatever was missed meanwhile must be read by id.
    case listening
}

/// One publish for the log to append.
public struct ClusterAppend: Sendable {
    public var kind: ClusterRecord.Kind
    public var topics: [TopicName]
    public var eventType: String?
    public var data: String
    public var dataIsJSON: Bool
    public var timeMilliseconds: UInt64
    public var retryMilliseconds: Int?
    public var isPrivate: Bool
    /// For a direct message: the clients it goes to, on whichever nodes they are.
    public var recipients: [ClientID]
    public var idempotencyKey: String?
    public var keyExpiresAtMilliseconds: UInt64
    /// The subscriber count the publisher is answered with (kept with the idempotency key, for a retry's answer).
    public var subscribers: Int

    public init(
        kind: ClusterRecord.Kind, topics: [TopicName], eventType: String?, data: String, dataIsJSON: Bool,
        timeMilliseconds: UInt64, retryMilliseconds: Int?, isPrivate: Bool, recipients: [ClientID] = [],
        idempotencyKey: String? = nil, keyExpiresAtMilliseconds: UInt64 = 0, subscribers: Int = 0
    ) {
        self.kind = kind
        self.topics = topics
        self.eventType = eventType
        self.data = data
        self.dataIsJSON = dataIsJSON
        self.timeMilliseconds = timeMilliseconds
        self.retryMilliseconds = retryMilliseconds
        self.isPrivate = isPrivate
        self.recipients = recipients
        self.idempotencyKey = idempotencyKey
        self.keyExpiresAtMilliseconds = keyExpiresAtMilliseconds
        self.subscribers = subscribers
    }
}

/// What became of one ``ClusterAppend``.
public enum ClusterAppendOutcome: Hashable, Sendable {
    /// Appended under this id.
    case appended(EventID)
    /// Its idempotency key was already used: the first publish's answer.
    case replay(PublishResult)
}

/// One record of the log, as a node reads it back.
public struct ClusterRecord: Sendable {
    public enum Kind: Int, Hashable, Sendable {
        /// A published event: kept in history, replayed to resuming clients.
        case event = 0
        /// Live only (typing indicators, presence changes): delivered to the connected, never replayed.
        case ephemeral = 1
        /// A direct message to ``ClusterRecord/recipients``, wherever they are connected; never replayed.
        case direct = 2
    }

    public var id: EventID
    public var kind: Kind
    public var topics: [TopicName]
    public var eventType: String?
    public var data: String
    public var dataIsJSON: Bool
    public var timeMilliseconds: UInt64
    public var retryMilliseconds: Int?
    public var isPrivate: Bool
    public var recipients: [ClientID]

    public init(
        id: EventID, kind: Kind, topics: [TopicName], eventType: String?, data: String, dataIsJSON: Bool,
        timeMilliseconds: UInt64, retryMilliseconds: Int?, isPrivate: Bool, recipients: [ClientID] = []
    ) {
        self.id = id
        self.kind = kind
        self.topics = topics
        self.eventType = eventType
        self.data = data
        self.dataIsJSON = dataIsJSON
        self.timeMilliseconds = timeMilliseconds
        self.retryMilliseconds = retryMilliseconds
        self.isPrivate = isPrivate
        self.recipients = recipients
    }

    /// The record an append became under `id`.
    public init(_ append: ClusterAppend, id: EventID) {
        self.init(
            id: id, kind: append.kind, topics: append.topics, eventType: append.eventType, data: append.data,
            dataIsJSON: append.dataIsJSON, timeMilliseconds: append.timeMilliseconds,
            retryMilliseconds: append.retryMilliseconds, isPrivate: append.isPrivate, recipients: append.recipients)
    }
}

/// A client connected to some node, as the cluster's presence and direct messages see it.
public struct ClusterMember: Hashable, Sendable {
    public var clientID: ClientID
    public var selectors: [TopicSelector]
    public var transport: Transport
    public var userID: String?
    public var name: String?
    public var sinceMilliseconds: UInt64

    public init(
        clientID: ClientID, selectors: [TopicSelector], transport: Transport, userID: String?, name: String?,
        sinceMilliseconds: UInt64
    ) {
        self.clientID = clientID
        self.selectors = selectors
        self.transport = transport
        self.userID = userID
        self.name = name
        self.sinceMilliseconds = sinceMilliseconds
    }
}
