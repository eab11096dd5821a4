import CSQLite
import NIOConcurrencyHelpers

/// How hard SQLite pushes a commit to the disk (`PRAGMA synchronous`).
public enum SQLiteSynchronous: String, Sendable, CaseIterable {
    /// Syncs at checkpoints only: a commit survives a crash of the broker; a power loss may undo the last commits,
    /// never corrupt the file.
    case normal
    /// Syncs at every commit: a commit also survives a power loss.
    case full
}

/// An ``EventStore`` in one SQLite file, in WAL mode, held exclusively by this broker while it runs.
///
/// This file owns the schema, its migrations (`PRAGMA user_version`) and every query; ``SQLiteConnection`` and
/// ``SQLiteStatement`` only wrap the C API.
///
/// ```
/// events            id INTEGER PRIMARY KEY, event_type, data, data_is_json, time_ms, retry_ms, private
/// event_topics      (topic, event_id) primary key, position: an event's topics in publish order
/// topic_horizons    topic primary key, evicted_through: the newest id retention dropped on that topic
/// meta              key primary key, value: global_horizon, first_id, last_id (kept when every event is gone)
/// idempotency_keys  key primary key, event_id, topics (space-separated), subscribers, expires_ms
/// ```
///
/// Opening takes an exclusive lock (`locking_mode=EXCLUSIVE` and a write transaction), checks the file
/// (`quick_check`, schema version, tables) and creates or migrates the schema; the lock is held until ``close()``,
/// so a second broker on the same file (in this process or another) fails with ``StoreError/Code/locked``.
/// Every method takes an internal lock, so calls from different threads are safe, though the broker makes them
/// from one thread at a time. Ids, times and expiries must fit in a signed 64-bit integer.
public final class SQLiteEventStore: EventStore, @unchecked Sendable {
    /// The schema version this broker writes; a file with a newer one is refused.
    static let schemaVersion = 1
    /// Rows deleted per transaction by ``applyRetention(topicHorizons:globalHorizon:nowMilliseconds:)``.
    static let defaultRetentionChunkRows = 2_000

    private let path: String
    private let retentionChunkRows: Int
    // Everything below is guarded by `lock`.
    private let lock = NIOLock()
    private var connection: SQLiteConnection?
    private var statements: Statements?
    private var firstIDStored = false
    /// Horizons this process already recorded and applied in full. Empty at start, so that the first retention after
    /// a restart also finishes deletions a crash interrupted.
    private var appliedTopicHorizons: [TopicName: EventID] = [:]
    private var appliedGlobalHorizon = EventID.zero

    /// Opens the store at `path`, creating the file if needed.
    ///
    /// - Parameters:
    ///   - path: the database file; its directory must exist. SQLite adds `PATH-wal` beside it while open.
    ///   - synchronous: how hard each commit is pushed to the disk.
    /// - Throws: ``StoreError`` `.locked` when another broker holds the file, `.unwritable` when the file or its
    ///   directory cannot be created or written, `.corrupt` when the file is not a store of this broker (not SQLite,
    ///   damaged, foreign tables, or a newer schema version), each with a message naming the file.
    public convenience init(path: String, synchronous: SQLiteSynchronous = .normal) throws(StoreError) {
        try self.init(path: path, synchronous: synchronous, retentionChunkRows: Self.defaultRetentionChunkRows)
    }

    init(path: String, synchronous: SQLiteSynchronous, retentionChunkRows: Int) throws(StoreError) {
        self.path = path
        self.retentionChunkRows = max(1, retentionChunkRows)
        let connection: SQLiteConnection
        do {
            connection = try SQLiteConnection(path: path)
        } catch {
            throw Self.startupError(error, path: path)
        }
        do throws(SQLiteFailure) {
            guard !connection.isReadOnly else {
                throw SQLiteFailure(code: SQLITE_READONLY, message: "the file is read-only", context: "open")
            }
            try Self.configure(connection, synchronous: synchronous)
            try Self.checkAndMigrate(connection)
            self.statements = try Statements(connection)
        } catch {
            connection.close()
            throw Self.startupError(error, path: path)
        }
        self.connection = connection
    }

    deinit {
        self.close()
    }

    // MARK: EventStore

    public func load() throws(StoreError) -> StoredState {
        self.lock.lock()
        defer { self.lock.unlock() }
        let (connection, _) = try self.openConnection(doing: "loading")
        do throws(SQLiteFailure) {
            var state = StoredState()
            try self.loadMeta(connection, into: &state)
            state.topicHorizons = try self.loadTopicHorizons(connection)
            state.events = try self.loadEvents(
                connection, topicHorizons: state.topicHorizons, globalHorizon: state.globalHorizon)
            state.idempotencyKeys = try self.loadIdempotencyKeys(connection)
            self.firstIDStored = state.firstID != nil
            return state
        } catch {
            throw Self.startupError(error, path: self.path)
        }
    }

    public func commit(_ events: [StoredEvent], keys: [StoredIdempotencyKey]) throws(StoreError) {
        self.lock.lock()
        defer { self.lock.unlock() }
        guard !events.isEmpty || !keys.isEmpty else { return }
        let (connection, statements) = try self.openConnection(doing: "committing")
        do throws(SQLiteFailure) {
            try Self.transaction(connection, statements) { () throws(SQLiteFailure) in
                for event in events { try Self.insert(event, statements) }
                for key in keys { try Self.insert(key, statements) }
                guard let firstID = events.lazy.map(\.id).min(), let lastID = events.lazy.map(\.id).max() else {
                    return
                }
                if !self.firstIDStored {
                    try statements.insertMetaIfAbsent.bind(Meta.firstID, at: 1)
                    try statements.insertMetaIfAbsent.bind(Self.integer(firstID.rawValue), at: 2)
                    try statements.insertMetaIfAbsent.run()
                }
                try statements.raiseMeta.bind(Meta.lastID, at: 1)
                try statements.raiseMeta.bind(Self.integer(lastID.rawValue), at: 2)
                try statements.raiseMeta.run()
            }
        } catch {
            throw self.operationError(error, doing: "committing a batch (events: \(events.count), keys: \(keys.count))")
        }
        if !events.isEmpty { self.firstIDStored = true }
    }

    public func applyRetention(
        topicHorizons: [TopicName: EventID], globalHorizon: EventID, nowMilliseconds: UInt64
    ) throws(StoreError) {
        self.lock.lock()
        defer { self.lock.unlock() }
        let (connection, statements) = try self.openConnection(doing: "applying retention")
        let raisedGlobal = globalHorizon > self.appliedGlobalHorizon ? globalHorizon : nil
        let global = max(globalHorizon, self.appliedGlobalHorizon)
        let raised = topicHorizons.filter { $0.value > (self.appliedTopicHorizons[$0.key] ?? .zero) }
            .sorted { $0.key < $1.key }
        do throws(SQLiteFailure) {
            // Horizons first: a crash during the deletions leaves rows at or below a recorded horizon (which `load`
            // skips and the next retention deletes), never a horizon lower than what is gone.
            try self.recordHorizons(raised, global: raisedGlobal, connection, statements)
            for (topic, horizon) in raised where horizon > global {
                try self.deleteTopicMemberships(topic, through: horizon, connection, statements)
            }
            if let raisedGlobal {
                try self.deleteEvents(through: raisedGlobal, connection, statements)
            }
            try self.deleteExpiredKeys(at: nowMilliseconds, connection, statements)
        } catch {
            throw self.operationError(error, doing: "applying retention")
        }
        for (topic, horizon) in raised { self.appliedTopicHorizons[topic] = horizon }
        self.appliedGlobalHorizon = global
    }

    public func close() {
        self.lock.lock()
        defer { self.lock.unlock() }
        self.statements?.finalize()
        self.statements = nil
        self.connection?.close()
        self.connection = nil
    }

    // MARK: Test hooks

    /// Caps the file at `pages` pages (at least its current size) until it is closed: past it, SQLite fails writes
    /// with `SQLITE_FULL`, as on a full disk.
    func setMaximumPageCount(_ pages: Int) throws(StoreError) {
        self.lock.lock()
        defer { self.lock.unlock() }
        let (connection, _) = try self.openConnection(doing: "limiting its size")
        do throws(SQLiteFailure) {
            try connection.execute("PRAGMA max_page_count = \(max(1, pages))")
        } catch {
            throw self.operationError(error, doing: "limiting its size")
        }
    }

    /// The file's size in pages.
    func pageCount() throws(StoreError) -> Int {
        try self.count("PRAGMA page_count")
    }

    /// Rows in the tables, including any that `load` would skip.
    func rowCounts() throws(StoreError) -> (events: Int, eventTopics: Int, topicHorizons: Int, idempotencyKeys: Int) {
        (
            try self.count("SELECT count(*) FROM events"), try self.count("SELECT count(*) FROM event_topics"),
            try self.count("SELECT count(*) FROM topic_horizons"),
            try self.count("SELECT count(*) FROM idempotency_keys")
        )
    }

    private func count(_ query: String) throws(StoreError) -> Int {
        self.lock.lock()
        defer { self.lock.unlock() }
        let (connection, _) = try self.openConnection(doing: "counting")
        do throws(SQLiteFailure) {
            let statement = try connection.prepare(query)
            defer { statement.finalize() }
            return try statement.step() ? Int(statement.int64(at: 0)) : 0
        } catch {
            throw self.operationError(error, doing: "counting")
        }
    }
}

// MARK: - Schema and start-up

extension SQLiteEventStore {
    /// The statements that take the schema from version `index` to `index + 1`.
    private static let migrations: [[String]] = [
        [
            """
            CREATE TABLE events (
                id INTEGER PRIMARY KEY,
                event_type TEXT,
                data TEXT NOT NULL,
                data_is_json INTEGER NOT NULL,
                time_ms INTEGER NOT NULL,
                retry_ms INTEGER,
                private INTEGER NOT NULL
            ) STRICT
            """,
            """
            CREATE TABLE event_topics (
                topic TEXT NOT NULL,
                event_id INTEGER NOT NULL REFERENCES events (id),
                position INTEGER NOT NULL,
                PRIMARY KEY (topic, event_id)
            ) STRICT, WITHOUT ROWID
            """,
            "CREATE INDEX event_topics_by_event ON event_topics (event_id, position)",
            """
            CREATE TABLE topic_horizons (
                topic TEXT PRIMARY KEY,
                evicted_through INTEGER NOT NULL
            ) STRICT, WITHOUT ROWID
            """,
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT, WITHOUT ROWID",
            """
            CREATE TABLE idempotency_keys (
                key TEXT PRIMARY KEY,
                event_id INTEGER NOT NULL,
                topics TEXT NOT NULL,
                subscribers INTEGER NOT NULL,
                expires_ms INTEGER NOT NULL
            ) STRICT, WITHOUT ROWID
            """,
            "CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_ms)",
        ]
    ]

    /// The tables of the current schema version.
    private static let tables: Set<String> = ["events", "event_topics", "topic_horizons", "meta", "idempotency_keys"]

    /// Keys of the `meta` table.
    private enum Meta {
        static let globalHorizon = "global_horizon"
        static let firstID = "first_id"
        static let lastID = "last_id"
    }

    /// Takes the exclusive lock and sets the connection up; fails with SQLITE_BUSY when another connection holds
    /// the file, and with SQLITE_NOTADB when it is not a database.
    private static func configure(
        _ connection: SQLiteConnection, synchronous: SQLiteSynchronous
    ) throws(SQLiteFailure) {
        // Before WAL mode, so that SQLite keeps the WAL index in memory and never shares the file.
        try connection.execute("PRAGMA locking_mode = EXCLUSIVE")
        let journalMode = try connection.prepare("PRAGMA journal_mode = WAL")
        defer { journalMode.finalize() }
        let mode = try journalMode.step() ? journalMode.text(at: 0) : ""
        guard mode.lowercased() == "wal" else {
            throw SQLiteFailure(
                code: SQLITE_CANTOPEN, message: "the file cannot be put in WAL mode (journal mode '\(mode)')",
                context: "PRAGMA journal_mode = WAL")
        }
        try connection.execute("PRAGMA synchronous = \(synchronous.rawValue.uppercased())")
        try connection.execute("PRAGMA foreign_keys = ON")
        // Truncate the WAL back to 64 MiB after a checkpoint that follows a big retention or batch.
        try connection.execute("PRAGMA journal_size_limit = 67108864")
    }

    /// Checks the file inside the write transaction that also takes the lock, and creates or migrates the schema.
    private static func checkAndMigrate(_ connection: SQLiteConnection) throws(SQLiteFailure) {
        try connection.execute("BEGIN IMMEDIATE")
        do throws(SQLiteFailure) {
            try Self.quickCheck(connection)
            let version = try Self.userVersion(connection)
            guard version >= 0 else {
                throw SQLiteFailure(
                    code: SQLITE_CORRUPT, message: "the file has a negative schema version (\(version))",
                    context: "PRAGMA user_version")
            }
            guard version <= Self.schemaVersion else {
                throw SQLiteFailure(
                    code: SQLITE_CORRUPT,
                    message: "the file is from a newer broker (schema version \(version), this broker knows "
                        + "\(Self.schemaVersion)): run a newer broker, or point this one to another file",
                    context: "PRAGMA user_version")
            }
            let tables = try Self.tableNames(connection)
            if version == 0 {
                guard tables.isEmpty else {
                    throw SQLiteFailure(
                        code: SQLITE_CORRUPT,
                        message: "the file holds tables that are not an event store's "
                            + "(\(tables.sorted().prefix(5).joined(separator: ", ")))",
                        context: "sqlite_schema")
                }
            } else if version == Self.schemaVersion, tables != Self.tables {
                let foreign = tables.subtracting(Self.tables).sorted().joined(separator: ", ")
                let missing = Self.tables.subtracting(tables).sorted().joined(separator: ", ")
                throw SQLiteFailure(
                    code: SQLITE_CORRUPT,
                    message:
                        "the file's tables are not an event store's (unknown: [\(foreign)], missing: [\(missing)])",
                    context: "sqlite_schema")
            }
            for step in version..<Self.schemaVersion {
                for statement in Self.migrations[step] { try connection.execute(statement) }
                try connection.execute("PRAGMA user_version = \(step + 1)")
            }
            try connection.execute("COMMIT")
        } catch {
            if connection.isInTransaction { try? connection.execute("ROLLBACK") }
            throw error
        }
    }

    private static func quickCheck(_ connection: SQLiteConnection) throws(SQLiteFailure) {
        let statement = try connection.prepare("PRAGMA quick_check")
        defer { statement.finalize() }
        var problems: [String] = []
        while try statement.step() {
            let line = statement.text(at: 0)
            // The first line names the schema ("*** in database main ***"); the problems follow.
            if line != "ok", !line.hasPrefix("***"), problems.count < 3 { problems.append(line) }
        }
        guard problems.isEmpty else {
            throw SQLiteFailure(
                code: SQLITE_CORRUPT, message: "the file is damaged: \(problems.joined(separator: "; "))",
                context: "PRAGMA quick_check")
        }
    }

    private static func userVersion(_ connection: SQLiteConnection) throws(SQLiteFailure) -> Int {
        let statement = try connection.prepare("PRAGMA user_version")
        defer { statement.finalize() }
        return try statement.step() ? Int(statement.int64(at: 0)) : 0
    }

    private static func tableNames(_ connection: SQLiteConnection) throws(SQLiteFailure) -> Set<String> {
        let statement = try connection.prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
        defer { statement.finalize() }
        var names = Set<String>()
        while try statement.step() { names.insert(statement.text(at: 0)) }
        return names
    }

    /// Maps a failure while opening or loading: every code of ``StoreError`` may come out.
    private static func startupError(_ failure: SQLiteFailure, path: String) -> StoreError {
        if failure.isLocked {
            return StoreError(
                .locked,
                "The event store \(path) is held by another broker (or another program): stop it, or give this "
                    + "broker another file. \(failure)")
        }
        if failure.isCorrupt {
            return StoreError(
                .corrupt,
                "\(path) is not an event store of this broker, or is damaged: \(failure). Move it away, or give "
                    + "the broker another file.")
        }
        if failure.isDiskFull {
            return StoreError(.full, "The event store \(path) cannot grow, the disk or a quota is full: \(failure)")
        }
        if failure.isUnwritable {
            return StoreError(
                .unwritable,
                "The event store \(path) cannot be created or written: \(failure). Check that its directory exists "
                    + "and that this user may write the directory and the file.")
        }
        return StoreError(.io, "The event store \(path) cannot be opened: \(failure)")
    }
}

// MARK: - Statements and writing

extension SQLiteEventStore {
    /// The statements prepared once at start-up and reused for every commit and retention pass.
    private struct Statements {
        let begin: SQLiteStatement
        let commit: SQLiteStatement
        let rollback: SQLiteStatement
        let insertEvent: SQLiteStatement
        let insertTopic: SQLiteStatement
        let upsertKey: SQLiteStatement
        let raiseMeta: SQLiteStatement
        let insertMetaIfAbsent: SQLiteStatement
        let raiseTopicHorizon: SQLiteStatement
        let deleteTopicChunk: SQLiteStatement
        let deleteEventIfOrphan: SQLiteStatement
        let globalChunkEnd: SQLiteStatement
        let deleteTopicsThrough: SQLiteStatement
        let deleteEventsThrough: SQLiteStatement
        let deleteExpiredKeys: SQLiteStatement

        init(_ connection: SQLiteConnection) throws(SQLiteFailure) {
            self.begin = try connection.prepare("BEGIN IMMEDIATE", persistent: true)
            self.commit = try connection.prepare("COMMIT", persistent: true)
            self.rollback = try connection.prepare("ROLLBACK", persistent: true)
            self.insertEvent = try connection.prepare(
                """
                INSERT INTO events (id, event_type, data, data_is_json, time_ms, retry_ms, private)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                """, persistent: true)
            // A topic named twice in one publish is stored once.
            self.insertTopic = try connection.prepare(
                """
                INSERT INTO event_topics (topic, event_id, position) VALUES (?1, ?2, ?3)
                ON CONFLICT (topic, event_id) DO NOTHING
                """, persistent: true)
            self.upsertKey = try connection.prepare(
                """
                INSERT INTO idempotency_keys (key, event_id, topics, subscribers, expires_ms)
                VALUES (?1, ?2, ?3, ?4, ?5)
                ON CONFLICT (key) DO UPDATE SET event_id = excluded.event_id, topics = excluded.topics,
                    subscribers = excluded.subscribers, expires_ms = excluded.expires_ms
                """, persistent: true)
            self.raiseMeta = try connection.prepare(
                """
                INSERT INTO meta (key, value) VALUES (?1, ?2)
                ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)
                """, persistent: true)
            self.insertMetaIfAbsent = try connection.prepare(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING", persistent: true)
            self.raiseTopicHorizon = try connection.prepare(
                """
                INSERT INTO topic_horizons (topic, evicted_through) VALUES (?1, ?2)
                ON CONFLICT (topic) DO UPDATE SET evicted_through = max(evicted_through, excluded.evicted_through)
                """, persistent: true)
            self.deleteTopicChunk = try connection.prepare(
                """
                DELETE FROM event_topics WHERE topic = ?1 AND event_id IN (
                    SELECT event_id FROM event_topics WHERE topic = ?1 AND event_id <= ?2 ORDER BY event_id LIMIT ?3
                ) RETURNING event_id
                """, persistent: true)
            self.deleteEventIfOrphan = try connection.prepare(
                "DELETE FROM events WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM event_topics WHERE event_id = ?1)",
                persistent: true)
            self.globalChunkEnd = try connection.prepare(
                "SELECT max(id) FROM (SELECT id FROM events WHERE id <= ?1 ORDER BY id LIMIT ?2)", persistent: true)
            self.deleteTopicsThrough = try connection.prepare(
                "DELETE FROM event_topics WHERE event_id <= ?1", persistent: true)
            self.deleteEventsThrough = try connection.prepare("DELETE FROM events WHERE id <= ?1", persistent: true)
            self.deleteExpiredKeys = try connection.prepare(
                """
                DELETE FROM idempotency_keys WHERE key IN (
                    SELECT key FROM idempotency_keys WHERE expires_ms <= ?1 LIMIT ?2
                )
                """, persistent: true)
        }

        func finalize() {
            for statement in [
                self.begin, self.commit, self.rollback, self.insertEvent, self.insertTopic, self.upsertKey,
                self.raiseMeta, self.insertMetaIfAbsent, self.raiseTopicHorizon, self.deleteTopicChunk,
                self.deleteEventIfOrphan, self.globalChunkEnd, self.deleteTopicsThrough, self.deleteEventsThrough,
                self.deleteExpiredKeys,
            ] {
                statement.finalize()
            }
        }
    }

    /// Runs `body` in one write transaction: commits when it returns, rolls back when anything throws.
    private static func transaction(
        _ connection: SQLiteConnection, _ statements: Statements, _ body: () throws(SQLiteFailure) -> Void
    ) throws(SQLiteFailure) {
        // A transaction a failed rollback left open would make BEGIN fail for good.
        if connection.isInTransaction { try? statements.rollback.run() }
        try statements.begin.run()
        do throws(SQLiteFailure) {
            try body()
            try statements.commit.run()
        } catch {
            // SQLite rolls some failures (a full disk, an I/O error) back by itself.
            if connection.isInTransaction { try? statements.rollback.run() }
            throw error
        }
    }

    /// An event on no topic is not stored: it would already be forgotten (its id still counts for `last_id`).
    private static func insert(_ event: StoredEvent, _ statements: Statements) throws(SQLiteFailure) {
        guard !event.topics.isEmpty else { return }
        let id = try Self.integer(event.id.rawValue)
        let insertEvent = statements.insertEvent
        try insertEvent.bind(id, at: 1)
        try insertEvent.bind(event.eventType, at: 2)
        try insertEvent.bind(event.data, at: 3)
        try insertEvent.bind(event.dataIsJSON, at: 4)
        try insertEvent.bind(Self.integer(event.timeMilliseconds), at: 5)
        try insertEvent.bind(event.retryMilliseconds, at: 6)
        try insertEvent.bind(event.isPrivate, at: 7)
        try insertEvent.run()
        let insertTopic = statements.insertTopic
        for (position, topic) in event.topics.enumerated() {
            try insertTopic.bind(topic.value, at: 1)
            try insertTopic.bind(id, at: 2)
            try insertTopic.bind(position, at: 3)
            try insertTopic.run()
        }
    }

    private static func insert(_ key: StoredIdempotencyKey, _ statements: Statements) throws(SQLiteFailure) {
        let upsertKey = statements.upsertKey
        try upsertKey.bind(key.key, at: 1)
        try upsertKey.bind(Self.integer(key.result.id.rawValue), at: 2)
        try upsertKey.bind(key.result.topics.map(\.value).joined(separator: " "), at: 3)
        try upsertKey.bind(key.result.subscribers, at: 4)
        try upsertKey.bind(Self.integer(key.expiresAtMilliseconds), at: 5)
        try upsertKey.run()
    }

    /// Records raised horizons, `retentionChunkRows` topics per transaction, never lowering a stored one.
    private func recordHorizons(
        _ raised: [(key: TopicName, value: EventID)], global: EventID?, _ connection: SQLiteConnection,
        _ statements: Statements
    ) throws(SQLiteFailure) {
        var global = global
        var start = 0
        while start < raised.count || global != nil {
            let chunk = raised[start..<min(start + self.retentionChunkRows, raised.count)]
            try Self.transaction(connection, statements) { () throws(SQLiteFailure) in
                if let global {
                    try statements.raiseMeta.bind(Meta.globalHorizon, at: 1)
                    try statements.raiseMeta.bind(Self.integer(global.rawValue), at: 2)
                    try statements.raiseMeta.run()
                }
                for (topic, horizon) in chunk {
                    try statements.raiseTopicHorizon.bind(topic.value, at: 1)
                    try statements.raiseTopicHorizon.bind(Self.integer(horizon.rawValue), at: 2)
                    try statements.raiseTopicHorizon.run()
                }
            }
            global = nil
            start += chunk.count
        }
    }

    /// Takes `topic` off every event at or below `horizon`, and deletes the events that are then on no topic, in the
    /// same transaction, a chunk at a time.
    private func deleteTopicMemberships(
        _ topic: TopicName, through horizon: EventID, _ connection: SQLiteConnection, _ statements: Statements
    ) throws(SQLiteFailure) {
        let horizon = try Self.integer(horizon.rawValue)
        var deleted = self.retentionChunkRows
        while deleted == self.retentionChunkRows {
            try Self.transaction(connection, statements) { () throws(SQLiteFailure) in
                var eventIDs: [Int64] = []
                let deleteTopicChunk = statements.deleteTopicChunk
                try deleteTopicChunk.bind(topic.value, at: 1)
                try deleteTopicChunk.bind(horizon, at: 2)
                try deleteTopicChunk.bind(self.retentionChunkRows, at: 3)
                defer { deleteTopicChunk.reset() }
                while try deleteTopicChunk.step() { eventIDs.append(deleteTopicChunk.int64(at: 0)) }
                deleteTopicChunk.reset()
                for eventID in eventIDs {
                    try statements.deleteEventIfOrphan.bind(eventID, at: 1)
                    try statements.deleteEventIfOrphan.run()
                }
                deleted = eventIDs.count
            }
        }
    }

    /// Deletes every event at or below `horizon` with its topics, `retentionChunkRows` events per transaction.
    private func deleteEvents(
        through horizon: EventID, _ connection: SQLiteConnection, _ statements: Statements
    ) throws(SQLiteFailure) {
        let horizon = try Self.integer(horizon.rawValue)
        var done = false
        while !done {
            try Self.transaction(connection, statements) { () throws(SQLiteFailure) in
                let globalChunkEnd = statements.globalChunkEnd
                try globalChunkEnd.bind(horizon, at: 1)
                try globalChunkEnd.bind(self.retentionChunkRows, at: 2)
                defer { globalChunkEnd.reset() }
                guard try globalChunkEnd.step(), !globalChunkEnd.isNull(at: 0) else {
                    done = true
                    return
                }
                let end = globalChunkEnd.int64(at: 0)
                globalChunkEnd.reset()
                try statements.deleteTopicsThrough.bind(end, at: 1)
                try statements.deleteTopicsThrough.run()
                try statements.deleteEventsThrough.bind(end, at: 1)
                try statements.deleteEventsThrough.run()
                done = end == horizon || connection.changes < self.retentionChunkRows
            }
        }
    }

    /// Deletes keys that expired at or before `now`, `retentionChunkRows` per statement (each its own transaction).
    private func deleteExpiredKeys(
        at now: UInt64, _ connection: SQLiteConnection, _ statements: Statements
    ) throws(SQLiteFailure) {
        let now = try Self.integer(now)
        var deleted = self.retentionChunkRows
        while deleted == self.retentionChunkRows {
            try statements.deleteExpiredKeys.bind(now, at: 1)
            try statements.deleteExpiredKeys.bind(self.retentionChunkRows, at: 2)
            try statements.deleteExpiredKeys.run()
            deleted = connection.changes
        }
    }

    /// `value` as SQLite's signed integer; ids (about 1.8e15) and times in milliseconds fit with room to spare.
    private static func integer(_ value: UInt64) throws(SQLiteFailure) -> Int64 {
        guard let integer = Int64(exactly: value) else {
            throw SQLiteFailure(
                code: SQLITE_RANGE, message: "\(value) does not fit in a signed 64-bit integer", context: "bind")
        }
        return integer
    }

    private func openConnection(doing what: String) throws(StoreError) -> (SQLiteConnection, Statements) {
        guard let connection = self.connection, let statements = self.statements else {
            throw StoreError(.io, "The event store \(self.path) is closed (while \(what)).")
        }
        return (connection, statements)
    }

    /// Maps a failure after start-up: a full disk is `.full` (a later call may succeed), anything else `.io`.
    private func operationError(_ failure: SQLiteFailure, doing what: String) -> StoreError {
        if failure.isDiskFull {
            return StoreError(
                .full,
                "The event store \(self.path) is full (disk or quota) while \(what): \(failure). The failed "
                    + "transaction was rolled back; it can be retried once space is freed.")
        }
        return StoreError(.io, "The event store \(self.path) failed while \(what): \(failure)")
    }
}

// MARK: - Loading

extension SQLiteEventStore {
    private func loadMeta(_ connection: SQLiteConnection, into state: inout StoredState) throws(SQLiteFailure) {
        let statement = try connection.prepare("SELECT key, value FROM meta")
        defer { statement.finalize() }
        while try statement.step() {
            let key = statement.text(at: 0)
            let value = try Self.eventID(statement.int64(at: 1), "meta value '\(key)'")
            switch key {
            case Meta.lastID: state.lastID = value
            case Meta.firstID: state.firstID = value
            case Meta.globalHorizon: state.globalHorizon = value
            default: break
            }
        }
    }

    private func loadTopicHorizons(_ connection: SQLiteConnection) throws(SQLiteFailure) -> [TopicName: EventID] {
        let statement = try connection.prepare("SELECT topic, evicted_through FROM topic_horizons")
        defer { statement.finalize() }
        var horizons: [TopicName: EventID] = [:]
        while try statement.step() {
            let topic = try Self.topicName(statement.text(at: 0))
            horizons[topic] = try Self.eventID(statement.int64(at: 1), "horizon of topic '\(topic)'")
        }
        return horizons
    }

    /// Events in id order with their topics in publish order; a topic at or below its horizon (left by a retention
    /// pass a crash interrupted) is skipped, and so is an event left on no topic.
    private func loadEvents(
        _ connection: SQLiteConnection, topicHorizons: [TopicName: EventID], globalHorizon: EventID
    ) throws(SQLiteFailure) -> [StoredEvent] {
        let statement = try connection.prepare(
            """
            SELECT e.id, e.event_type, e.data, e.data_is_json, e.time_ms, e.retry_ms, e.private, t.topic
            FROM events AS e JOIN event_topics AS t ON t.event_id = e.id
            ORDER BY e.id, t.position
            """)
        defer { statement.finalize() }
        var events: [StoredEvent] = []
        var topics: [String: TopicName] = [:]
        while try statement.step() {
            let id = try Self.eventID(statement.int64(at: 0), "event id")
            let text = statement.text(at: 7)
            let topic: TopicName
            if let known = topics[text] {
                topic = known
            } else {
                topic = try Self.topicName(text)
                topics[text] = topic
            }
            guard id > globalHorizon, id > topicHorizons[topic, default: .zero] else { continue }
            if let last = events.indices.last, events[last].id == id {
                events[last].topics.append(topic)
                continue
            }
            let time = statement.int64(at: 4)
            guard time >= 0 else {
                throw SQLiteFailure(code: SQLITE_CORRUPT, message: "event \(id) has a negative time", context: "load")
            }
            events.append(
                StoredEvent(
                    id: id, topics: [topic], eventType: statement.isNull(at: 1) ? nil : statement.text(at: 1),
                    data: statement.text(at: 2), dataIsJSON: statement.int64(at: 3) != 0,
                    timeMilliseconds: UInt64(time),
                    retryMilliseconds: statement.isNull(at: 5) ? nil : Int(statement.int64(at: 5)),
                    isPrivate: statement.int64(at: 6) != 0))
        }
        return events
    }

    private func loadIdempotencyKeys(_ connection: SQLiteConnection) throws(SQLiteFailure) -> [StoredIdempotencyKey] {
        let statement = try connection.prepare(
            "SELECT key, event_id, topics, subscribers, expires_ms FROM idempotency_keys ORDER BY expires_ms")
        defer { statement.finalize() }
        var keys: [StoredIdempotencyKey] = []
        while try statement.step() {
            let key = statement.text(at: 0)
            let id = try Self.eventID(statement.int64(at: 1), "event id of idempotency key")
            var topics: [TopicName] = []
            for name in statement.text(at: 2).split(separator: " ") { topics.append(try Self.topicName(String(name))) }
            let expires = statement.int64(at: 4)
            guard let subscribers = Int(exactly: statement.int64(at: 3)), expires >= 0 else {
                throw SQLiteFailure(
                    code: SQLITE_CORRUPT, message: "an idempotency key has invalid numbers", context: "idempotency_keys"
                )
            }
            keys.append(
                StoredIdempotencyKey(
                    key: key, result: PublishResult(id: id, topics: topics, subscribers: subscribers),
                    expiresAtMilliseconds: UInt64(expires)))
        }
        return keys
    }

    private static func eventID(_ value: Int64, _ what: String) throws(SQLiteFailure) -> EventID {
        guard value >= 0 else {
            throw SQLiteFailure(code: SQLITE_CORRUPT, message: "negative \(what) \(value)", context: "load")
        }
        return EventID(rawValue: UInt64(value))
    }

    private static func topicName(_ text: String) throws(SQLiteFailure) -> TopicName {
        guard TopicName.isValid(text) else {
            throw SQLiteFailure(
                code: SQLITE_CORRUPT, message: "invalid topic name '\(text.prefix(80))'", context: "load")
        }
        return TopicName(unchecked: text)
    }
}
