/// A durable copy of the bus's history, so that a restart loses nothing a client could resume from.
///
/// The in-memory ``EventHistory`` stays the one the bus reads (replays, history pages, gap detection); a store
/// keeps the same events on disk and gives them back at start-up. The broker calls a store from one thread of its
/// own at a time (its store writer), never from an event loop, so implementations may block and need no locking
/// of their own beyond what their I/O needs.
///
/// ```
/// start-up       load()                         everything kept, in id order, with the retention horizons
/// publishing     commit(events, keys)           one transaction per batch of publishes that arrived together
/// every second   applyRetention(…)              forget what the in-memory history dropped, and expired keys
/// shutdown       close()
/// ```
public protocol EventStore: AnyObject, Sendable {
    /// Reads back what the store holds. Called once, before any other method.
    func load() throws(StoreError) -> StoredState

    /// Makes `events` (ascending ids, all above any committed before) and the idempotency keys of their publishes
    /// durable, in one transaction: when it returns, all of them survive a crash; when it throws, none of them is
    /// stored and the store can be called again (after a full disk, once space returns).
    func commit(_ events: [StoredEvent], keys: [StoredIdempotencyKey]) throws(StoreError)

    /// Forgets what retention dropped from the in-memory history: on each topic of `topicHorizons`, every event at
    /// or below its id; on every topic, every event at or below `globalHorizon`; an event once it is on no topic any
    /// more; and idempotency keys that expired at or before `nowMilliseconds`. Records the horizons, so that `load`
    /// returns them (a client resuming from below one has missed events). May take a while; never called
    /// concurrently with `commit`.
    func applyRetention(
        topicHorizons: [TopicName: EventID], globalHorizon: EventID, nowMilliseconds: UInt64
    ) throws(StoreError)

    /// Releases the file (and its lock). Nothing is called after it.
    func close()
}

/// One stored event: what a publish carried, and the id and time the broker gave it.
public struct StoredEvent: Hashable, Sendable {
    public var id: EventID
    /// One or more topics, in publish order.
    public var topics: [TopicName]
    public var eventType: String?
    public var data: String
    public var dataIsJSON: Bool
    public var timeMilliseconds: UInt64
    public var retryMilliseconds: Int?
    public var isPrivate: Bool

    public init(
        id: EventID, topics: [TopicName], eventType: String?, data: String, dataIsJSON: Bool,
        timeMilliseconds: UInt64, retryMilliseconds: Int?, isPrivate: Bool
    ) {
        self.id = id
        self.topics = topics
        self.eventType = eventType
        self.data = data
        self.dataIsJSON = dataIsJSON
        self.timeMilliseconds = timeMilliseconds
        self.retryMilliseconds = retryMilliseconds
        self.isPrivate = isPrivate
    }
}

/// An `Idempotency-Key` and the answer its first publish got, until it expires.
public struct StoredIdempotencyKey: Hashable, Sendable {
    public var key: String
    public var result: PublishResult
    public var expiresAtMilliseconds: UInt64

    public init(key: String, result: PublishResult, expiresAtMilliseconds: UInt64) {
        self.key = key
        self.result = result
        self.expiresAtMilliseconds = expiresAtMilliseconds
    }
}

/// Everything a store gives back at start-up.
public struct StoredState: Sendable {
    /// Retained events, ascending by id.
    public var events: [StoredEvent]
    /// The highest id ever committed, retained or not; nil for an empty store. New ids start above it.
    public var lastID: EventID?
    /// The first id ever committed to this store; nil for an empty store. A client resuming from below it missed
    /// events that were never stored here.
    public var firstID: EventID?
    /// Per topic, the newest id retention dropped there (as given to `applyRetention`).
    public var topicHorizons: [TopicName: EventID]
    /// The newest id dropped on every topic (as given to `applyRetention`).
    public var globalHorizon: EventID
    /// Idempotency keys, expired ones included (the broker drops those).
    public var idempotencyKeys: [StoredIdempotencyKey]

    public init(
        events: [StoredEvent] = [], lastID: EventID? = nil, firstID: EventID? = nil,
        topicHorizons: [TopicName: EventID] = [:], globalHorizon: EventID = .zero,
        idempotencyKeys: [StoredIdempotencyKey] = []
    ) {
        self.events = events
        self.lastID = lastID
        self.firstID = firstID
        self.topicHorizons = topicHorizons
        self.globalHorizon = globalHorizon
        self.idempotencyKeys = idempotencyKeys
    }
}

/// Why a store cannot be opened or written, in words an operator can act on.
///
/// ```
/// code          raised when                                               the broker
/// locked        another process (another broker) holds the database        refuses to start
/// unwritable    the file or its directory cannot be created or written     refuses to start
/// corrupt       the file is not a database of this broker, or is damaged   refuses to start
/// full          the disk (or a quota) is full                              answers publishes 503, retries
/// io            any other failure of the storage                           answers publishes 503, retries
/// ```
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case locked, unwritable, corrupt, full, io
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Another process holds the database.
        public static let locked = Code(.locked)
        /// The database file or its directory cannot be created or written.
        public static let unwritable = Code(.unwritable)
        /// The file is not a database of this broker, or is damaged.
        public static let corrupt = Code(.corrupt)
        /// The disk or a quota is full; writing may succeed again later.
        public static let full = Code(.full)
        /// Any other storage failure.
        public static let io = Code(.io)

        public var description: String { self.base.rawValue }
    }

    public let code: Code
    /// What failed and, where it helps, what to do; names the file.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { self.message }
}
