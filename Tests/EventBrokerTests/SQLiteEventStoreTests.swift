import Foundation
import Testing

@testable import EventBroker

@Suite struct SQLiteEventStoreTests {
    private func event(
        _ id: UInt64, _ topics: String..., type: String? = nil, data: String = "x", json: Bool = false,
        time: UInt64 = 1_700_000_000_000, retry: Int? = nil, isPrivate: Bool = false
    ) throws -> StoredEvent {
        StoredEvent(
            id: EventID(rawValue: id), topics: try topics.map { try TopicName($0) }, eventType: type, data: data,
            dataIsJSON: json, timeMilliseconds: time, retryMilliseconds: retry, isPrivate: isPrivate)
    }

    private func key(_ key: String, id: UInt64, _ topics: String..., expires: UInt64) throws -> StoredIdempotencyKey {
        StoredIdempotencyKey(
            key: key,
            result: PublishResult(
                id: EventID(rawValue: id), topics: try topics.map { try TopicName($0) }, subscribers: 3),
            expiresAtMilliseconds: expires)
    }

    private func horizons(_ pairs: KeyValuePairs<String, UInt64>) throws -> [TopicName: EventID] {
        var horizons: [TopicName: EventID] = [:]
        for (topic, id) in pairs { horizons[try TopicName(topic)] = EventID(rawValue: id) }
        return horizons
    }

    /// Ids and topics of the loaded events: `["2:a,b", "3:b"]`.
    private func summary(_ state: StoredState) -> [String] {
        state.events.map { "\($0.id):\($0.topics.map(\.value).joined(separator: ","))" }
    }

    private func reopen(_ path: String) throws -> (SQLiteEventStore, StoredState) {
        let store = try SQLiteEventStore(path: path)
        return (store, try store.load())
    }

    // MARK: Round trips

    @Test func roundTripsEveryFieldAcrossReopen() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            let events = [
                try self.event(
                    1_800_000_000_000_001, "orders/eu", "orders/us", "$broadcast", type: "created",
                    data: #"{"id":7,"name":"Zoë 🚀 日本語"}"#, json: true, retry: 2_500),
                try self.event(1_800_000_000_000_002, "chat", data: "line one\nline two\r\n\u{0}tail é"),
                try self.event(1_800_000_000_000_003, "chat", "orders/eu", type: "", data: "", isPrivate: true),
                try self.event(1_800_000_000_000_004, "b", "a", "c", data: "[1,2]", json: true, time: 0, retry: 0),
            ]
            let store = try SQLiteEventStore(path: path)
            #expect(try store.load().events.isEmpty)
            try store.commit(Array(events[0..<2]), keys: [])
            try store.commit(Array(events[2...]), keys: [])
            #expect(try store.load().events == events)
            store.close()

            let (reopened, state) = try self.reopen(path)
            defer { reopened.close() }
            #expect(state.events == events)
            #expect(state.lastID == EventID(rawValue: 1_800_000_000_000_004))
            #expect(state.firstID == EventID(rawValue: 1_800_000_000_000_001))
        }
    }

    @Test func emptyStoreHasNoIDsAndNoHorizons() throws {
        try withTemporaryDirectory { directory in
            let store = try SQLiteEventStore(path: directory.path("events.sqlite"))
            defer { store.close() }
            let state = try store.load()
            #expect(state.events.isEmpty)
            #expect(state.lastID == nil)
            #expect(state.firstID == nil)
            #expect(state.topicHorizons.isEmpty)
            #expect(state.globalHorizon == .zero)
            #expect(state.idempotencyKeys.isEmpty)
        }
    }

    @Test func lastAndFirstIDSurviveReopenAndRetentionOfEverything() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            let store = try SQLiteEventStore(path: path)
            _ = try store.load()
            try store.commit([try self.event(100, "a"), try self.event(101, "b")], keys: [])
            try store.commit([try self.event(205, "a")], keys: [])
            store.close()

            var (reopened, state) = try self.reopen(path)
            #expect(state.lastID == EventID(rawValue: 205))
            #expect(state.firstID == EventID(rawValue: 100))
            try reopened.commit([try self.event(300, "c")], keys: [])
            try reopened.applyRetention(topicHorizons: [:], globalHorizon: EventID(rawValue: 300), nowMilliseconds: 0)
            #expect(try reopened.rowCounts().events == 0)
            reopened.close()

            (reopened, state) = try self.reopen(path)
            defer { reopened.close() }
            #expect(state.events.isEmpty)
            #expect(state.lastID == EventID(rawValue: 300))
            #expect(state.firstID == EventID(rawValue: 100))
            #expect(state.globalHorizon == EventID(rawValue: 300))
        }
    }

    @Test func commitsABatchOfAThousandEventsInOneTransaction() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            let store = try SQLiteEventStore(path: path)
            let events = try (UInt64(1)...1_000).map { id in
                try self.event(5_000 + id, "t/\(id % 7)", "all", data: "{\"n\":\(id)}", json: true)
            }
            let keys = try (0..<50).map { try self.key("k\($0)", id: 5_001 + UInt64($0), "all", expires: 9_000) }
            try store.commit(events, keys: keys)
            store.close()

            let (reopened, state) = try self.reopen(path)
            defer { reopened.close() }
            #expect(state.events == events)
            #expect(state.idempotencyKeys.count == 50)
            #expect(state.lastID == EventID(rawValue: 6_000))
            #expect(try reopened.rowCounts().eventTopics == 2_000)
        }
    }

    // MARK: Retention

    @Test func topicHorizonTakesEventsOffThatTopicAndDeletesOrphans() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            let store = try SQLiteEventStore(path: path)
            try store.commit(
                [
                    try self.event(1, "a"), try self.event(2, "a", "b"), try self.event(3, "b"),
                    try self.event(4, "a"),
                ], keys: [])
            try store.applyRetention(
                topicHorizons: try self.horizons(["a": 2]), globalHorizon: .zero, nowMilliseconds: 0)

            let counts = try store.rowCounts()
            #expect(counts.events == 3)
            #expect(counts.eventTopics == 3)
            #expect(self.summary(try store.load()) == ["2:b", "3:b", "4:a"])
            store.close()

            let (reopened, state) = try self.reopen(path)
            defer { reopened.close() }
            #expect(self.summary(state) == ["2:b", "3:b", "4:a"])
            #expect(state.topicHorizons == (try self.horizons(["a": 2])))
            #expect(state.globalHorizon == .zero)
        }
    }

    @Test func globalHorizonDeletesEventsOnEveryTopic() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            let store = try SQLiteEventStore(path: path)
            try store.commit(
                [
                    try self.event(1, "a"), try self.event(2, "a", "b"), try self.event(3, "c"),
                    try self.event(4, "b", "c"), try self.event(5, "a"),
                ], keys: [])
            try store.applyRetention(topicHorizons: [:], globalHorizon: EventID(rawValue: 3), nowMilliseconds: 0)

            let counts = try store.rowCounts()
            #expect(counts.events == 2)
            #expect(counts.eventTopics == 3)
            store.close()

            let (reopened, state) = try self.reopen(path)
            defer { reopened.close() }
            #expect(self.summary(state) == ["4:b,c", "5:a"])
            #expect(state.globalHorizon == EventID(rawValue: 3))
            #expect(state.topicHorizons.isEmpty)
        }
    }

    @Test func horizonsAreNeverLoweredAndPersist() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            let store = try SQLiteEventStore(path: path)
            try store.commit((UInt64(1)...10).map { try self.event($0, "a", "b") }, keys: [])
            try store.applyRetention(
                topicHorizons: try self.horizons(["a": 6, "b": 2]), globalHorizon: EventID(rawValue: 4),
                nowMilliseconds: 0)
            try store.applyRetention(
                topicHorizons: try self.horizons(["a": 3, "b": 5]), globalHorizon: EventID(rawValue: 1),
                nowMilliseconds: 0)
            store.close()

            // A new instance knows nothing of what the first applied: the file alone keeps the horizons up.
            var reopened = try SQLiteEventStore(path: path)
            try reopened.applyRetention(
                topicHorizons: try self.horizons(["a": 1, "b": 1]), globalHorizon: EventID(rawValue: 2),
                nowMilliseconds: 0)
            reopened.close()

            reopened = try SQLiteEventStore(path: path)
            defer { reopened.close() }
            let state = try reopened.load()
            #expect(state.topicHorizons == (try self.horizons(["a": 6, "b": 5])))
            #expect(state.globalHorizon == EventID(rawValue: 4))
            #expect(self.summary(state) == ["6:b", "7:a,b", "8:a,b", "9:a,b", "10:a,b"])
        }
    }

    @Test func retentionWorksInChunksOfBoundedSize() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            let store = try SQLiteEventStore(path: path, synchronous: .normal, retentionChunkRows: 3)
            defer { store.close() }
            try store.commit(
                (UInt64(1)...40).map { try self.event($0, $0.isMultiple(of: 2) ? "even" : "odd", "all") },
                keys: (0..<10).map { try self.key("k\($0)", id: UInt64($0 + 1), "all", expires: UInt64($0)) })
            try store.applyRetention(
                topicHorizons: try self.horizons(["all": 30, "odd": 35, "even": 12]),
                globalHorizon: EventID(rawValue: 7), nowMilliseconds: 6)

            let state = try store.load()
            let expected = (UInt64(8)...40).compactMap { id -> String? in
                let own = id.isMultiple(of: 2) ? (id > 12 ? "even" : nil) : (id > 35 ? "odd" : nil)
                let topics = [own, id > 30 ? "all" : nil].compactMap { $0 }
                return topics.isEmpty ? nil : "\(id):\(topics.joined(separator: ","))"
            }
            #expect(self.summary(state) == expected)
            #expect(try store.rowCounts().events == expected.count)
            #expect(state.idempotencyKeys.map(\.key) == ["k7", "k8", "k9"])
        }
    }

    @Test func idempotencyKeysAreStoredUntilTheyExpire() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            let store = try SQLiteEventStore(path: path)
            let keys = [
                try self.key("retry-1", id: 10, "a", "b", expires: 1_000),
                try self.key("ключ/🔑", id: 11, "$broadcast", expires: 2_000),
                try self.key("retry-3", id: 12, "c", expires: 3_000),
            ]
            try store.commit(
                [try self.event(10, "a", "b"), try self.event(11, "$broadcast")], keys: Array(keys[0..<2]))
            try store.commit([try self.event(12, "c")], keys: [keys[2]])
            #expect(try store.load().idempotencyKeys == keys)

            try store.applyRetention(topicHorizons: [:], globalHorizon: .zero, nowMilliseconds: 2_000)
            store.close()

            let (reopened, state) = try self.reopen(path)
            defer { reopened.close() }
            #expect(state.idempotencyKeys == [keys[2]])
            #expect(state.events.count == 3)
        }
    }

    // MARK: Lifecycle and start-up errors

    @Test func closeIsIdempotentAndTheFileReopens() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            let store = try SQLiteEventStore(path: path, synchronous: .full)
            try store.commit([try self.event(1, "a")], keys: [])
            store.close()
            store.close()
            let error = #expect(throws: StoreError.self) { try store.commit([try self.event(2, "a")], keys: []) }
            #expect(error?.code == .io)

            for _ in 0..<3 {
                let (reopened, state) = try self.reopen(path)
                #expect(self.summary(state) == ["1:a"])
                reopened.close()
            }
        }
    }

    @Test func secondStoreOnTheSameFileIsLocked() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            let first = try SQLiteEventStore(path: path)
            try first.commit([try self.event(1, "a")], keys: [])

            let error = #expect(throws: StoreError.self) { try SQLiteEventStore(path: path) }
            #expect(error?.code == .locked)
            #expect(error?.message.contains(path) == true)
            // The refused store took nothing away from the first.
            try first.commit([try self.event(2, "a")], keys: [])
            first.close()

            let (second, state) = try self.reopen(path)
            defer { second.close() }
            #expect(self.summary(state) == ["1:a", "2:a"])
        }
    }

    @Test func anotherProcessCannotOpenTheFileWhileTheStoreHoldsIt() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            let store = try SQLiteEventStore(path: path)
            try store.commit([try self.event(1, "a")], keys: [])

            let refused = try Self.readWithPython(path)
            #expect(refused.status != 0)
            #expect(refused.output.contains("database is locked"), "\(refused.output)")

            store.close()
            let allowed = try Self.readWithPython(path)
            #expect(allowed.status == 0, "\(allowed.output)")
        }
    }

    /// Reads the whole database from a child process with Python's `sqlite3` module, waiting for no lock.
    private static func readWithPython(_ path: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c",
            "import sqlite3, sys; print(len(list(sqlite3.connect(sys.argv[1], timeout=0).iterdump())))", path,
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func pathThatCannotBeWrittenIsUnwritable() throws {
        try withTemporaryDirectory { directory in
            var paths = [directory.path("missing/events.sqlite")]
            let regularFile = directory.path("file")
            try Data("x".utf8).write(to: URL(fileURLWithPath: regularFile))
            paths.append(regularFile + "/events.sqlite")
            // Permissions bind everyone but root.
            if getuid() != 0 {
                let readOnlyDirectory = directory.path("read-only")
                try FileManager.default.createDirectory(
                    atPath: readOnlyDirectory, withIntermediateDirectories: false,
                    attributes: [.posixPermissions: 0o555])
                paths.append(readOnlyDirectory + "/events.sqlite")
                let readOnlyFile = directory.path("read-only.sqlite")
                try SQLiteEventStore(path: readOnlyFile).close()
                try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: readOnlyFile)
                paths.append(readOnlyFile)
            }
            for path in paths {
                let error = #expect(throws: StoreError.self) { try SQLiteEventStore(path: path) }
                #expect(error?.code == .unwritable, "\(path): \(String(describing: error))")
                #expect(error?.message.contains(path) == true)
            }
        }
    }

    @Test func fileThatIsNotSQLiteIsCorrupt() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            try Data(String(repeating: "not a database, just text. ", count: 400).utf8)
                .write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: StoreError.self) { try SQLiteEventStore(path: path) }
            #expect(error?.code == .corrupt)
            #expect(error?.message.contains(path) == true)
        }
    }

    @Test func damagedDatabaseIsCorrupt() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            let store = try SQLiteEventStore(path: path)
            try store.commit((UInt64(1)...500).map { try self.event($0, "a", "b", data: "payload \($0)") }, keys: [])
            let pages = try store.pageCount()
            store.close()
            // One page in the middle turns to garbage; the header and the schema (page 1) stay intact.
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.seek(toOffset: UInt64(pages / 2 * 4_096))
            try handle.write(contentsOf: Data(repeating: 0xA5, count: 4_096))
            try handle.close()

            let error = #expect(throws: StoreError.self) { try SQLiteEventStore(path: path) }
            #expect(error?.code == .corrupt, "\(String(describing: error))")
            #expect(error?.message.contains("damaged") == true)
        }
    }

    @Test func fileFromANewerBrokerIsCorrupt() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            try SQLiteEventStore(path: path).close()
            try Self.setUserVersion(2, of: path)
            let error = #expect(throws: StoreError.self) { try SQLiteEventStore(path: path) }
            #expect(error?.code == .corrupt)
            #expect(error?.message.contains("newer broker") == true)
            #expect(error?.message.contains(path) == true)
        }
    }

    @Test func databaseWithTablesOfAnotherApplicationIsCorrupt() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            try SQLiteEventStore(path: path).close()
            // Version 0 with tables: a database some other program made.
            try Self.setUserVersion(0, of: path)
            let error = #expect(throws: StoreError.self) { try SQLiteEventStore(path: path) }
            #expect(error?.code == .corrupt)
            #expect(error?.message.contains("not an event store") == true)
        }
    }

    /// Writes the schema version into the database header (big-endian, at byte 60) of a closed database.
    private static func setUserVersion(_ version: UInt32, of path: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: 60)
        try handle.write(contentsOf: withUnsafeBytes(of: version.bigEndian) { Data($0) })
        try handle.close()
    }

    // MARK: Failures during operation

    @Test func fullDiskFailsTheCommitAndALaterOneSucceeds() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            let store = try SQLiteEventStore(path: path)
            try store.commit([try self.event(1, "a")], keys: [])
            try store.setMaximumPageCount(try store.pageCount())

            let big = try self.event(2, "a", data: String(repeating: "0123456789abcdef", count: 16_384))
            let key = try self.key("k", id: 2, "a", expires: 10)
            let error = #expect(throws: StoreError.self) { try store.commit([big], keys: [key]) }
            #expect(error?.code == .full)
            #expect(error?.message.contains(path) == true)
            #expect(self.summary(try store.load()) == ["1:a"])

            try store.setMaximumPageCount(1_000_000)
            try store.commit([big], keys: [key])
            store.close()

            let (reopened, state) = try self.reopen(path)
            defer { reopened.close() }
            #expect(state.events.last == big)
            #expect(state.idempotencyKeys == [key])
            #expect(state.lastID == EventID(rawValue: 2))
        }
    }

    @Test func failedCommitLeavesNothingBehind() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("events.sqlite")
            let store = try SQLiteEventStore(path: path)
            try store.commit([try self.event(10, "a")], keys: [])

            // The third event reuses id 10, so the batch fails after two inserts.
            let error = #expect(throws: StoreError.self) {
                try store.commit(
                    [try self.event(11, "a"), try self.event(12, "b"), try self.event(10, "c")],
                    keys: [try self.key("k", id: 11, "a", expires: 10)])
            }
            #expect(error?.code == .io)
            let state = try store.load()
            #expect(self.summary(state) == ["10:a"])
            #expect(state.idempotencyKeys.isEmpty)
            #expect(state.lastID == EventID(rawValue: 10))
            #expect(try store.rowCounts().eventTopics == 1)

            try store.commit([try self.event(11, "a")], keys: [])
            store.close()
            let (reopened, reloaded) = try self.reopen(path)
            defer { reopened.close() }
            #expect(self.summary(reloaded) == ["10:a", "11:a"])
            #expect(reloaded.lastID == EventID(rawValue: 11))
        }
    }

    // MARK: Throughput (not run by default)

    /// Prints commit rates, and how long a reopen (with `quick_check`) and a load of what they wrote take; run with
    /// `EVENT_STORE_BENCHMARK=1 swift test --filter SQLiteEventStoreTests/measureCommitThroughput`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["EVENT_STORE_BENCHMARK"] == "1"))
    func measureCommitThroughput() throws {
        for synchronous in SQLiteSynchronous.allCases {
            try withTemporaryDirectory { directory in
                let path = directory.path("bench.sqlite")
                let store = try SQLiteEventStore(path: path, synchronous: synchronous)
                var id: UInt64 = 1_800_000_000_000_000
                func next(_ count: Int) throws -> [StoredEvent] {
                    try (0..<count).map { _ in
                        id += 1
                        return try self.event(
                            id, "bench/topic", "bench/all", data: #"{"price":101.25,"symbol":"ACME"}"#, json: true)
                    }
                }
                let singles = try (0..<5_000).map { _ in try next(1) }
                var start = ContinuousClock.now
                for batch in singles { try store.commit(batch, keys: []) }
                let singleRate = Double(singles.count) / Self.seconds(since: start)

                let batches = try (0..<1_000).map { _ in try next(100) }
                start = ContinuousClock.now
                for batch in batches { try store.commit(batch, keys: []) }
                let batchRate = Double(batches.count * 100) / Self.seconds(since: start)
                store.close()

                start = ContinuousClock.now
                let reopened = try SQLiteEventStore(path: path, synchronous: synchronous)
                defer { reopened.close() }
                let openSeconds = Self.seconds(since: start)
                start = ContinuousClock.now
                let loaded = try reopened.load().events.count
                let loadSeconds = Self.seconds(since: start)
                print(
                    "synchronous=\(synchronous.rawValue): \(Int(singleRate)) single-event commits/s, "
                        + "\(Int(batchRate)) events/s in 100-event commits; reopen \(Int(openSeconds * 1000)) ms, "
                        + "load of \(loaded) events \(Int(loadSeconds * 1000)) ms")
            }
        }
    }

    private static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
