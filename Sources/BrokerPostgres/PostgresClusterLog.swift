import EventBroker
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// The cluster's log in PostgreSQL: every node appends to one events table under one id sequence, and learns of
/// what the others appended through `LISTEN`/`NOTIFY`.
///
/// ```
/// eventbroker_sequence     one row: last_id (the id sequence), first_id, global_horizon
/// eventbroker_events       id, kind (0 event, 1 live only, 2 direct), topics, event_type, data (bytea), …, recipients
/// eventbroker_horizons     per topic, the newest id retention dropped there
/// eventbroker_idempotency  key → the first publish's answer, until it expires
/// eventbroker_nodes        node_id, seen_ms (a heartbeat, every two seconds)
/// eventbroker_members      each node's connected clients, for presence and direct messages
/// ```
/// An append locks the sequence row first (`SELECT … FOR UPDATE`), so appends from every node are serialized and
/// ids are committed in id order, without holes: a node that has read id `n` never finds a smaller id later. The
/// transaction ends with `pg_notify('eventbroker_events', 'FIRST-LAST')`, the id range and never the data, so the
/// 8000-byte payload limit never matters. Retention takes `pg_try_advisory_xact_lock`: one node at a time applies
/// it, and the others skip their turn rather than wait.
public final class PostgresClusterLog: ClusterLog {
    public let nodeID: String
    public let url: PostgresURL
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let appender: PostgresSession
    private let reader: PostgresSession
    private let listener: PostgresListener

    static let eventsChannel = "eventbroker_events"
    static let membersChannel = "eventbroker_members"
    /// The advisory lock retention takes (any constant the application owns).
    private static let retentionLock: Int64 = 0x4556_4252_4B52_5400
    private static let schemaLock: Int64 = 0x4556_4252_4B53_4348
    /// A node is live while it was seen this recently.
    static let liveWindowMilliseconds: Int64 = 10_000
    /// Live-only records and direct messages are kept this long (for a node that catches up after a short outage).
    static let liveRecordMilliseconds: UInt64 = 60_000
    private static let now = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

    /// Connects, creates the tables if they are missing, and checks the database answers.
    ///
    /// - Throws: `StoreError` when PostgreSQL cannot be reached or refuses (a clear message naming the URL without
    ///   its password).
    public init(url: PostgresURL, nodeID: String? = nil, logger: Logger) throws(StoreError) {
        self.url = url
        self.logger = logger
        self.nodeID = nodeID ?? Self.makeNodeID()
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = self.group.next()
        self.appender = PostgresSession(url: url, eventLoop: loop, role: "append", logger: logger)
        self.reader = PostgresSession(url: url, eventLoop: loop, role: "read", logger: logger)
        self.listener = PostgresListener(
            url: url, eventLoop: loop, channels: [Self.eventsChannel, Self.membersChannel], logger: logger)
        do {
            try self.createSchema()
        } catch {
            self.appender.close()
            try? self.group.syncShutdownGracefully()
            throw error
        }
    }

    private static func makeNodeID() -> String {
        var generator = SystemRandomNumberGenerator()
        return "node-" + String((generator.next() as UInt64) >> 24, radix: 16)
    }

    private func createSchema() throws(StoreError) {
        let logger = self.logger
        let firstID = Int64(BrokerClock.system.nowMicroseconds)
        try self.appender.run { connection in
            let statements: [PostgresQuery] = [
                "BEGIN",
                // Nodes starting together create the tables once.
                "SELECT pg_advisory_xact_lock(\(Self.schemaLock))",
                """
                CREATE TABLE IF NOT EXISTS eventbroker_sequence (
                    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                    last_id bigint NOT NULL, first_id bigint NOT NULL, global_horizon bigint NOT NULL)
                """,
                """
                CREATE TABLE IF NOT EXISTS eventbroker_events (
                    id bigint PRIMARY KEY, kind smallint NOT NULL, topics text[] NOT NULL, event_type text,
                    data bytea NOT NULL, data_is_json boolean NOT NULL, time_ms bigint NOT NULL, retry_ms integer,
                    private boolean NOT NULL, recipients text[] NOT NULL)
                """,
                """
                CREATE TABLE IF NOT EXISTS eventbroker_horizons (
                    topic text PRIMARY KEY, evicted_through bigint NOT NULL)
                """,
                """
                CREATE TABLE IF NOT EXISTS eventbroker_idempotency (
                    key text PRIMARY KEY, event_id bigint NOT NULL, topics text[] NOT NULL, subscribers integer NOT NULL,
                    expires_ms bigint NOT NULL)
                """,
                "CREATE TABLE IF NOT EXISTS eventbroker_nodes (node_id text PRIMARY KEY, seen_ms bigint NOT NULL)",
                """
                CREATE TABLE IF NOT EXISTS eventbroker_members (
                    client_id text PRIMARY KEY,
                    node_id text NOT NULL REFERENCES eventbroker_nodes (node_id) ON DELETE CASCADE,
                    selectors text[] NOT NULL, transport text NOT NULL, user_id text, name text, since_ms bigint NOT NULL)
                """,
                "CREATE INDEX IF NOT EXISTS eventbroker_members_by_node ON eventbroker_members (node_id)",
                """
                INSERT INTO eventbroker_sequence (last_id, first_id, global_horizon)
                VALUES (\(firstID - 1), \(firstID), 0) ON CONFLICT DO NOTHING
                """,
                "INSERT INTO eventbroker_nodes (node_id, seen_ms) VALUES (\(self.nodeID), \(unescaped: Self.now))",
                "COMMIT",
            ]
            for statement in statements { _ = try PostgresSession.rows(connection, statement, logger) }
        }
    }

    // MARK: ClusterLog

    public func load() throws(StoreError) -> StoredState {
        let logger = self.logger
        let url = self.url
        return try self.reader.run { connection in
            var state = StoredState()
            _ = try PostgresSession.rows(connection, "BEGIN ISOLATION LEVEL REPEATABLE READ", logger)
            let sequence = try PostgresSession.rows(
                connection, "SELECT last_id, first_id, global_horizon FROM eventbroker_sequence", logger)
            guard let row = sequence.first else {
                throw StoreError(.corrupt, "PostgreSQL at \(url): eventbroker_sequence has no row")
            }
            let (last, first, global) = try row.decode((Int64, Int64, Int64).self)
            state.lastID = EventID(rawValue: UInt64(last))
            state.firstID = EventID(rawValue: UInt64(first))
            state.globalHorizon = EventID(rawValue: UInt64(global))
            for row in try PostgresSession.rows(
                connection,
                """
                SELECT id, kind, topics, event_type, data, data_is_json, time_ms, retry_ms, private, recipients
                FROM eventbroker_events WHERE kind = 0 ORDER BY id
                """, logger)
            {
                let record = try Self.record(row, url: url)
                state.events.append(
                    StoredEvent(
                        id: record.id, topics: record.topics, eventType: record.eventType, data: record.data,
                        dataIsJSON: record.dataIsJSON, timeMilliseconds: record.timeMilliseconds,
                        retryMilliseconds: record.retryMilliseconds, isPrivate: record.isPrivate))
            }
            for row in try PostgresSession.rows(
                connection, "SELECT topic, evicted_through FROM eventbroker_horizons", logger)
            {
                let (topic, through) = try row.decode((String, Int64).self)
                state.topicHorizons[try Self.topic(topic, url: url)] = EventID(rawValue: UInt64(through))
            }
            for row in try PostgresSession.rows(
                connection,
                """
                SELECT key, event_id, topics, subscribers, expires_ms FROM eventbroker_idempotency
                WHERE expires_ms > \(unescaped: Self.now)
                """, logger)
            {
                let (key, id, topics, subscribers, expires) = try row.decode(
                    (String, Int64, [String], Int32, Int64).self)
                state.idempotencyKeys.append(
                    StoredIdempotencyKey(
                        key: key,
                        result: PublishResult(
                            id: EventID(rawValue: UInt64(id)), topics: try topics.map { try Self.topic($0, url: url) },
                            subscribers: Int(subscribers)),
                        expiresAtMilliseconds: UInt64(expires)))
            }
            _ = try PostgresSession.rows(connection, "COMMIT", logger)
            return state
        }
    }

    public func append(_ appends: [ClusterAppend]) throws(StoreError) -> [ClusterAppendOutcome] {
        let logger = self.logger
        let url = self.url
        return try self.appender.run { connection in
            _ = try PostgresSession.rows(connection, "BEGIN", logger)
            // Serializes appends across nodes: ids are committed in id order.
            let locked = try PostgresSession.rows(
                connection, "SELECT last_id FROM eventbroker_sequence FOR UPDATE", logger)
            guard let last = try locked.first?.decode(Int64.self) else {
                throw StoreError(.corrupt, "PostgreSQL at \(url): eventbroker_sequence has no row")
            }
            var replays: [String: PublishResult] = [:]
            let keys = appends.compactMap(\.idempotencyKey)
            if !keys.isEmpty {
                for row in try PostgresSession.rows(
                    connection,
                    """
                    SELECT key, event_id, topics, subscribers FROM eventbroker_idempotency
                    WHERE key = ANY(\(keys)) AND expires_ms > \(unescaped: Self.now)
                    """, logger)
                {
                    let (key, id, topics, subscribers) = try row.decode((String, Int64, [String], Int32).self)
                    replays[key] = PublishResult(
                        id: EventID(rawValue: UInt64(id)), topics: try topics.map { try Self.topic($0, url: url) },
                        subscribers: Int(subscribers))
                }
            }
            var outcomes: [ClusterAppendOutcome] = []
            outcomes.reserveCapacity(appends.count)
            var rows = EventRows(capacity: appends.count)
            var keyRows = KeyRows()
            var next = last
            for append in appends {
                if let key = append.idempotencyKey, let first = replays[key] {
                    outcomes.append(.replay(first))
                    continue
                }
                next += 1
                outcomes.append(.appended(EventID(rawValue: UInt64(next))))
                rows.add(append, id: next)
                if let key = append.idempotencyKey { keyRows.add(key, append, id: next) }
            }
            if next > last {
                _ = try PostgresSession.rows(connection, rows.insert, logger)
                if !keyRows.keys.isEmpty { _ = try PostgresSession.rows(connection, keyRows.upsert, logger) }
                _ = try PostgresSession.rows(
                    connection,
                    """
                    WITH moved AS (UPDATE eventbroker_sequence SET last_id = \(next))
                    SELECT pg_notify(\(Self.eventsChannel), \("\(last + 1)-\(next)"))
                    """, logger)
            }
            _ = try PostgresSession.rows(connection, "COMMIT", logger)
            return outcomes
        }
    }

    public func records(after: EventID, through: EventID, limit: Int) throws(StoreError) -> [ClusterRecord] {
        let logger = self.logger
        let url = self.url
        return try self.reader.run { connection in
            try PostgresSession.rows(
                connection,
                """
                SELECT id, kind, topics, event_type, data, data_is_json, time_ms, retry_ms, private, recipients
                FROM eventbroker_events WHERE id > \(Int64(after.rawValue)) AND id <= \(Int64(through.rawValue))
                ORDER BY id LIMIT \(limit)
                """, logger
            ).map { row in try Self.record(row, url: url) }
        }
    }

    public func lastID() throws(StoreError) -> EventID {
        let logger = self.logger
        return try self.reader.run { connection in
            let rows = try PostgresSession.rows(connection, "SELECT last_id FROM eventbroker_sequence", logger)
            return EventID(rawValue: UInt64(try rows.first?.decode(Int64.self) ?? 0))
        }
    }

    public func applyRetention(
        topicHorizons: [TopicName: EventID], globalHorizon: EventID, nowMilliseconds: UInt64
    ) throws(StoreError) -> Bool {
        let logger = self.logger
        let global = Int64(globalHorizon.rawValue)
        let topics = topicHorizons.keys.map(\.value)
        let horizons = topicHorizons.values.map { Int64($0.rawValue) }
        let newest = max(horizons.max() ?? 0, global)
        let liveCutoff = Int64(nowMilliseconds) - Int64(Self.liveRecordMilliseconds)
        return try self.reader.run { connection in
            _ = try PostgresSession.rows(connection, "BEGIN", logger)
            let locked = try PostgresSession.rows(
                connection, "SELECT pg_try_advisory_xact_lock(\(Self.retentionLock))", logger)
            guard try locked.first?.decode(Bool.self) == true else {
                _ = try PostgresSession.rows(connection, "ROLLBACK", logger)
                return false
            }
            let statements: [PostgresQuery] = [
                """
                UPDATE eventbroker_sequence SET global_horizon = GREATEST(global_horizon, \(global))
                """,
                "DELETE FROM eventbroker_events WHERE kind = 0 AND id <= \(global)",
                """
                INSERT INTO eventbroker_horizons (topic, evicted_through)
                SELECT * FROM unnest(\(topics)::text[], \(horizons)::bigint[])
                ON CONFLICT (topic) DO UPDATE
                SET evicted_through = GREATEST(eventbroker_horizons.evicted_through, EXCLUDED.evicted_through)
                """,
                // An event goes once every topic it is on has dropped it.
                """
                DELETE FROM eventbroker_events e
                WHERE e.kind = 0 AND e.id > \(global) AND e.id <= \(newest) AND NOT EXISTS (
                    SELECT 1 FROM unnest(e.topics) AS t (topic)
                    LEFT JOIN eventbroker_horizons h ON h.topic = t.topic
                    WHERE h.evicted_through IS NULL OR e.id > h.evicted_through)
                """,
                "DELETE FROM eventbroker_horizons WHERE evicted_through <= \(global)",
                "DELETE FROM eventbroker_events WHERE kind <> 0 AND time_ms < \(liveCutoff)",
                "DELETE FROM eventbroker_idempotency WHERE expires_ms <= \(Int64(nowMilliseconds))",
                // Nodes that stopped without saying so (killed): their members go with them.
                "DELETE FROM eventbroker_nodes WHERE seen_ms < \(unescaped: Self.now) - 60000",
                "COMMIT",
            ]
            for statement in statements { _ = try PostgresSession.rows(connection, statement, logger) }
            return true
        }
    }

    public func updateMembers(joined: [ClusterMember], left: [ClientID]) throws(StoreError) {
        let logger = self.logger
        let node = self.nodeID
        let rows = MemberRows(joined)
        return try self.appender.run { connection in
            let statements: [PostgresQuery] = [
                "BEGIN",
                """
                INSERT INTO eventbroker_nodes (node_id, seen_ms) VALUES (\(node), \(unescaped: Self.now))
                ON CONFLICT (node_id) DO UPDATE SET seen_ms = EXCLUDED.seen_ms
                """,
                """
                DELETE FROM eventbroker_members WHERE node_id = \(node) AND client_id = ANY(\(left.map(\.rawValue)))
                """,
                """
                INSERT INTO eventbroker_members (client_id, node_id, selectors, transport, user_id, name, since_ms)
                SELECT c, \(node), string_to_array(s, ' '), t, NULLIF(u, ''), NULLIF(n, ''), m
                FROM unnest(\(rows.ids)::text[], \(rows.selectors)::text[], \(rows.transports)::text[],
                            \(rows.users)::text[], \(rows.names)::text[], \(rows.since)::bigint[]) AS x (c, s, t, u, n, m)
                ON CONFLICT (client_id) DO UPDATE SET node_id = EXCLUDED.node_id, selectors = EXCLUDED.selectors,
                    transport = EXCLUDED.transport, user_id = EXCLUDED.user_id, name = EXCLUDED.name,
                    since_ms = EXCLUDED.since_ms
                """,
                "SELECT pg_notify(\(Self.membersChannel), \(node))",
                "COMMIT",
            ]
            for statement in statements { _ = try PostgresSession.rows(connection, statement, logger) }
        }
    }

    public func remoteMembers() throws(StoreError) -> [ClusterMember] {
        let logger = self.logger
        let node = self.nodeID
        return try self.reader.run { connection in
            _ = try PostgresSession.rows(
                connection,
                """
                INSERT INTO eventbroker_nodes (node_id, seen_ms) VALUES (\(node), \(unescaped: Self.now))
                ON CONFLICT (node_id) DO UPDATE SET seen_ms = EXCLUDED.seen_ms
                """, logger)
            return try PostgresSession.rows(
                connection,
                """
                SELECT m.client_id, m.selectors, m.transport, m.user_id, m.name, m.since_ms
                FROM eventbroker_members m JOIN eventbroker_nodes n ON n.node_id = m.node_id
                WHERE m.node_id <> \(node) AND n.seen_ms > \(unescaped: Self.now) - \(Self.liveWindowMilliseconds)
                """, logger
            ).compactMap { row -> ClusterMember? in
                let (id, selectors, transport, user, name, since) = try row.decode(
                    (String, [String], String, String?, String?, Int64).self)
                // A member this version cannot read (a newer node's transport, say) is left out, not fatal.
                guard let transport = Transport(rawValue: transport),
                    let selectors = try? selectors.map({ try TopicSelector($0) })
                else { return nil }
                return ClusterMember(
                    clientID: ClientID(rawValue: id), selectors: selectors, transport: transport, userID: user,
                    name: name, sinceMilliseconds: UInt64(max(since, 0)))
            }
        }
    }

    public func listen(_ handler: @escaping @Sendable (ClusterSignal) -> Void) {
        self.listener.start { channel, payload in
            switch channel {
            case Self.eventsChannel:
                // "FIRST-LAST": the range just committed.
                guard let dash = payload.lastIndex(of: "-"),
                    let last = EventID(parsing: payload[payload.index(after: dash)...])
                else { return }
                handler(.appended(through: last))
            case Self.membersChannel:
                handler(.membersChanged)
            default:
                break
            }
        } state: { isListening in
            handler(isListening ? .listening : .interrupted)
        }
    }

    public func close() {
        self.listener.stop()
        let logger = self.logger
        let node = self.nodeID
        // A clean leave: this node's members disappear from presence at once.
        _ = try? self.appender.run { connection in
            _ = try PostgresSession.rows(connection, "DELETE FROM eventbroker_nodes WHERE node_id = \(node)", logger)
            _ = try PostgresSession.rows(connection, "SELECT pg_notify(\(Self.membersChannel), \(node))", logger)
        }
        self.appender.close()
        self.reader.close()
        try? self.group.syncShutdownGracefully()
    }

    // MARK: Rows

    private static func topic(_ text: String, url: PostgresURL) throws(StoreError) -> TopicName {
        do {
            return try TopicName(text)
        } catch {
            throw StoreError(.corrupt, "PostgreSQL at \(url): '\(text)' in the events table is not a topic name")
        }
    }

    private static func record(_ row: PostgresRow, url: PostgresURL) throws -> ClusterRecord {
        let (id, kind, topics, eventType, data, dataIsJSON, time, retry, isPrivate, recipients) = try row.decode(
            (Int64, Int16, [String], String?, ByteBuffer, Bool, Int64, Int32?, Bool, [String]).self)
        guard let kind = ClusterRecord.Kind(rawValue: Int(kind)) else {
            throw StoreError(.corrupt, "PostgreSQL at \(url): event \(id) has an unknown kind \(kind)")
        }
        return ClusterRecord(
            id: EventID(rawValue: UInt64(id)), kind: kind, topics: try topics.map { try Self.topic($0, url: url) },
            eventType: eventType, data: String(buffer: data), dataIsJSON: dataIsJSON,
            timeMilliseconds: UInt64(max(time, 0)), retryMilliseconds: retry.map(Int.init), isPrivate: isPrivate,
            recipients: recipients.map(ClientID.init(rawValue:)))
    }
}

/// A batch of events as column arrays, inserted by one statement (`unnest`).
private struct EventRows {
    var ids: [Int64] = []
    var kinds: [Int16] = []
    /// Topic names contain no spaces: each event's topics joined by one.
    var topics: [String] = []
    /// `''` for none (an event type is never empty).
    var eventTypes: [String] = []
    var data: [ByteBuffer] = []
    var dataIsJSON: [Bool] = []
    var times: [Int64] = []
    /// `-1` for none.
    var retries: [Int32] = []
    var isPrivate: [Bool] = []
    var recipients: [String] = []

    init(capacity: Int) {
        self.ids.reserveCapacity(capacity)
        self.data.reserveCapacity(capacity)
    }

    mutating func add(_ append: ClusterAppend, id: Int64) {
        self.ids.append(id)
        self.kinds.append(Int16(append.kind.rawValue))
        self.topics.append(append.topics.map(\.value).joined(separator: " "))
        self.eventTypes.append(append.eventType ?? "")
        self.data.append(ByteBuffer(string: append.data))
        self.dataIsJSON.append(append.dataIsJSON)
        self.times.append(Int64(append.timeMilliseconds))
        self.retries.append(append.retryMilliseconds.map { Int32(clamping: $0) } ?? -1)
        self.isPrivate.append(append.isPrivate)
        self.recipients.append(append.recipients.map(\.rawValue).joined(separator: " "))
    }

    var insert: PostgresQuery {
        """
        INSERT INTO eventbroker_events
            (id, kind, topics, event_type, data, data_is_json, time_ms, retry_ms, private, recipients)
        SELECT i, k, string_to_array(t, ' '), NULLIF(e, ''), d, j, m, NULLIF(r, -1), p, string_to_array(c, ' ')
        FROM unnest(\(self.ids)::bigint[], \(self.kinds)::smallint[], \(self.topics)::text[],
                    \(self.eventTypes)::text[], \(self.data)::bytea[], \(self.dataIsJSON)::boolean[],
                    \(self.times)::bigint[], \(self.retries)::integer[], \(self.isPrivate)::boolean[],
                    \(self.recipients)::text[]) AS x (i, k, t, e, d, j, m, r, p, c)
        """
    }
}

/// Idempotency keys of a batch, with the answers their publishes got.
private struct KeyRows {
    var keys: [String] = []
    var ids: [Int64] = []
    var topics: [String] = []
    var subscribers: [Int32] = []
    var expires: [Int64] = []

    mutating func add(_ key: String, _ append: ClusterAppend, id: Int64) {
        self.keys.append(key)
        self.ids.append(id)
        self.topics.append(append.topics.map(\.value).joined(separator: " "))
        self.subscribers.append(Int32(clamping: append.subscribers))
        self.expires.append(Int64(append.keyExpiresAtMilliseconds))
    }

    /// An expired key (still in the table until retention) is taken over.
    var upsert: PostgresQuery {
        """
        INSERT INTO eventbroker_idempotency (key, event_id, topics, subscribers, expires_ms)
        SELECT k, i, string_to_array(t, ' '), s, e
        FROM unnest(\(self.keys)::text[], \(self.ids)::bigint[], \(self.topics)::text[], \(self.subscribers)::integer[],
                    \(self.expires)::bigint[]) AS x (k, i, t, s, e)
        ON CONFLICT (key) DO UPDATE SET event_id = EXCLUDED.event_id, topics = EXCLUDED.topics,
            subscribers = EXCLUDED.subscribers, expires_ms = EXCLUDED.expires_ms
        """
    }
}

/// Members as column arrays. PostgreSQL text holds no NUL byte: one in a name or user id is dropped.
private struct MemberRows {
    var ids: [String] = []
    var selectors: [String] = []
    var transports: [String] = []
    var users: [String] = []
    var names: [String] = []
    var since: [Int64] = []

    init(_ members: [ClusterMember]) {
        for member in members {
            self.ids.append(member.clientID.rawValue)
            self.selectors.append(member.selectors.map(\.value).joined(separator: " "))
            self.transports.append(member.transport.rawValue)
            self.users.append(Self.text(member.userID))
            self.names.append(Self.text(member.name))
            self.since.append(Int64(member.sinceMilliseconds))
        }
    }

    private static func text(_ value: String?) -> String {
        guard let value else { return "" }
        return value.utf8.contains(0) ? String(decoding: value.utf8.filter { $0 != 0 }, as: UTF8.self) : value
    }
}
