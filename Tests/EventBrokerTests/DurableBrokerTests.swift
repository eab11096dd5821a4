import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import EventBroker

/// The publish path with a durable store: answers after the commit, group commit, failures, ordering with direct
/// messages, idempotency keys under commit, restoring at start-up, and retention handed to the store. The store here
/// is an in-memory double that can hold a commit or fail it; `SQLiteEventStoreTests` tests the real one.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct DurableBrokerTests {
    /// A store in memory: records every call, and can hold commits until released or fail the next ones.
    final class FakeStore: EventStore, Sendable {
        struct Calls {
            var commits: [[StoredEvent]] = []
            var keys: [StoredIdempotencyKey] = []
            var retention: [(topics: [TopicName: EventID], global: EventID)] = []
            var failNext = 0
            var closed = false
        }

        let calls = NIOLockedValueBox(Calls())
        let stored: StoredState
        /// Commits wait while the value is true.
        private let gate = ConditionLock(value: false)

        init(_ stored: StoredState = StoredState()) {
            self.stored = stored
        }

        func hold() {
            self.gate.lock()
            self.gate.unlock(withValue: true)
        }

        func release() {
            self.gate.lock()
            self.gate.unlock(withValue: false)
        }

        func load() throws(StoreError) -> StoredState { self.stored }

        func commit(_ events: [StoredEvent], keys: [StoredIdempotencyKey]) throws(StoreError) {
            self.gate.lock(whenValue: false)
            self.gate.unlock()
            let fails = self.calls.withLockedValue { calls -> Bool in
                if calls.failNext > 0 {
                    calls.failNext -= 1
                    return true
                }
                calls.commits.append(events)
                calls.keys += keys
                return false
            }
            if fails { throw StoreError(.full, "disk full (test)") }
        }

        func applyRetention(
            topicHorizons: [TopicName: EventID], globalHorizon: EventID, nowMilliseconds: UInt64
        ) throws(StoreError) {
            self.calls.withLockedValue { $0.retention.append((topicHorizons, globalHorizon)) }
        }

        func close() {
            self.calls.withLockedValue { $0.closed = true }
        }

        var committedIDs: [[EventID]] { self.calls.withLockedValue { $0.commits.map { $0.map(\.id) } } }
    }

    /// A subscriber whose record any thread may read.
    final class Recorder: Subscriber, Sendable {
        let clientID: ClientID
        private let received = NIOLockedValueBox<[EventID]>([])

        init(_ name: String) { self.clientID = ClientID(rawValue: name) }

        var ids: [EventID] { self.received.withLockedValue { $0 } }

        func deliver(_ event: BrokerEvent) -> Delivery {
            self.received.withLockedValue { ids in
                guard event.id > (ids.last ?? .zero) else { return .skipped }
                ids.append(event.id)
                return .written
            }
        }

        func flush() {}
        func heartbeat() {}
        func replay(_ start: SubscriptionStart) { for event in start.replay { _ = self.deliver(event) } }
    }

    struct Fixture {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let store: FakeStore
        let broker: Broker

        init(_ store: FakeStore = FakeStore(), configuration: BusConfiguration = BusConfiguration()) throws {
            self.store = store
            self.broker = try Broker(
                eventLoops: Array(self.group.makeIterator()), configuration: configuration, store: store)
        }

        var loop: any EventLoop { self.group.next() }

        func publish(_ topic: String, key: String? = nil) throws -> EventLoopFuture<PublishResult> {
            let promise = self.loop.makePromise(of: PublishResult.self)
            self.broker.publish(
                PublishRequest(topics: [try TopicName(topic)], data: "x", idempotencyKey: key), promise: promise)
            return promise.futureResult
        }

        func subscribe(_ recorder: Recorder, _ selector: String, lastEventID: String? = nil) throws -> SubscriptionStart
        {
            let loop = self.loop
            let broker = self.broker
            let selectors = [try TopicSelector(selector)]
            return try loop.submit {
                let start = try broker.subscribe0(
                    recorder, selectors: selectors, lastEventID: lastEventID, transport: .sse, on: loop)
                recorder.replay(start)
                return start
            }.wait()
        }

        /// Polls `condition` for up to 5 s.
        func eventually(_ condition: () -> Bool) -> Bool {
            for _ in 0..<500 {
                if condition() { return true }
                usleep(10_000)
            }
            return condition()
        }

        func close() throws {
            self.broker.shutdown()
            try self.group.syncShutdownGracefully()
        }
    }

    @Test func publishIsAnsweredAndDeliveredOnlyAfterItsCommit() throws {
        let bus = try Fixture()
        let recorder = Recorder("r")
        _ = try bus.subscribe(recorder, "a")
        bus.store.hold()
        let published = try bus.publish("a")
        let answered = NIOLockedValueBox(false)
        published.whenComplete { _ in answered.withLockedValue { $0 = true } }
        usleep(50_000)
        #expect(!answered.withLockedValue { $0 }, "answered before the commit")
        #expect(recorder.ids.isEmpty, "delivered before the commit")
        #expect(bus.broker.stats().historyEvents == 0)
        bus.store.release()
        let result = try published.wait()
        #expect(bus.store.committedIDs == [[result.id]])
        #expect(bus.eventually { recorder.ids == [result.id] })
        #expect(bus.broker.stats().historyEvents == 1)
        try bus.close()
        #expect(bus.store.calls.withLockedValue { $0.closed })
    }

    @Test func publishesArrivingDuringACommitAreCommittedTogetherInIDOrder() throws {
        let bus = try Fixture()
        let recorder = Recorder("r")
        _ = try bus.subscribe(recorder, "**")
        bus.store.hold()
        let first = try bus.publish("a")
        #expect(bus.eventually { bus.store.calls.withLockedValue { _ in true } })
        usleep(50_000)  // the writer now waits inside the first commit
        let rest = try (0..<20).map { try bus.publish("t\($0 % 3)") }
        bus.store.release()
        let ids = try ([first] + rest).map { try $0.wait().id }
        #expect(ids == ids.sorted())
        let commits = bus.store.committedIDs
        #expect(commits.flatMap { $0 } == ids)
        #expect(commits.count <= 3, "group commit: \(commits.map(\.count))")
        #expect(bus.eventually { recorder.ids == ids })
        try bus.close()
    }

    @Test func failedCommitAnswers503AndDeliversNothingThenTheStoreRecovers() throws {
        let bus = try Fixture()
        let recorder = Recorder("r")
        _ = try bus.subscribe(recorder, "a")
        bus.store.calls.withLockedValue { $0.failNext = 1 }
        let failed = try bus.publish("a", key: "k1")
        #expect(throws: BrokerError.self) { try failed.wait() }
        do {
            _ = try failed.wait()
        } catch let error as BrokerError {
            #expect(error.code == .storeUnavailable)
        }
        #expect(bus.broker.stats().historyEvents == 0)
        // The next publish is stored, and the key of the failed one is free again.
        let retried = try bus.publish("a", key: "k1").wait()
        #expect(!retried.isReplay)
        #expect(bus.eventually { recorder.ids == [retried.id] })
        #expect(bus.store.committedIDs == [[retried.id]])
        try bus.close()
    }

    @Test func retryWithTheSameKeyDuringTheCommitGetsTheFirstAnswer() throws {
        let bus = try Fixture()
        bus.store.hold()
        let first = try bus.publish("a", key: "order-1")
        let retry = try bus.publish("a", key: "order-1")
        bus.store.release()
        let original = try first.wait()
        let replayed = try retry.wait()
        #expect(replayed.id == original.id)
        #expect(replayed.isReplay)
        #expect(bus.store.committedIDs.flatMap { $0 } == [original.id])
        #expect(bus.store.calls.withLockedValue { $0.keys.map(\.key) } == ["order-1"])
        #expect(try bus.publish("a", key: "order-1").wait().isReplay)
        try bus.close()
    }

    @Test func directMessageWaitsBehindThePublishBeingCommitted() throws {
        let bus = try Fixture()
        let recorder = Recorder("client-1")
        _ = try bus.subscribe(recorder, "a")
        bus.store.hold()
        let event = try bus.publish("a")
        let promise = bus.loop.makePromise(of: PublishResult.self)
        bus.broker.sendDirect(to: .client(recorder.clientID), data: "psst", promise: promise)
        usleep(50_000)
        #expect(recorder.ids.isEmpty)
        bus.store.release()
        let ids = [try event.wait().id, try promise.futureResult.wait().id]
        #expect(bus.eventually { recorder.ids == ids }, "\(recorder.ids) != \(ids)")
        #expect(bus.store.committedIDs == [[ids[0]]], "direct messages are not stored")
        try bus.close()
    }

    @Test func startsFromWhatTheStoreHolds() throws {
        let topic = try TopicName("orders")
        let events = (1...5).map { index in
            StoredEvent(
                id: EventID(rawValue: 1_000 + UInt64(index)), topics: [topic], eventType: nil, data: "e\(index)",
                dataIsJSON: false, timeMilliseconds: UInt64.max / 4, retryMilliseconds: nil, isPrivate: false)
        }
        let key = StoredIdempotencyKey(
            key: "k", result: PublishResult(id: events[4].id, topics: [topic], subscribers: 2),
            expiresAtMilliseconds: UInt64.max / 2)
        let store = FakeStore(
            StoredState(
                events: events, lastID: EventID(rawValue: 2_000), firstID: EventID(rawValue: 900),
                topicHorizons: [topic: EventID(rawValue: 1_000)], idempotencyKeys: [key]))
        // Events from the far future, so that the age bound keeps them.
        let bus = try Fixture(store, configuration: BusConfiguration(history: HistoryLimits(maxAge: nil)))
        #expect(bus.broker.stats().historyEvents == 5)
        // Resuming from a stored id replays exactly the events after it, with no gap.
        let recorder = Recorder("r")
        let start = try bus.subscribe(recorder, "orders", lastEventID: "1002")
        #expect(start.gap == nil)
        #expect(recorder.ids == events[2...].map(\.id))
        // Below the recorded horizon is a gap.
        #expect(try bus.subscribe(Recorder("old"), "orders", lastEventID: "999").gap != nil)
        // New ids continue above everything the store ever held.
        let next = try bus.publish("orders").wait()
        #expect(next.id > EventID(rawValue: 2_000))
        // The stored key still answers.
        let replay = try bus.publish("orders", key: "k").wait()
        #expect(replay.isReplay)
        #expect(replay.id == events[4].id)
        try bus.close()
    }

    @Test func retentionIsHandedToTheStore() throws {
        let bus = try Fixture(configuration: BusConfiguration(history: HistoryLimits(eventsPerTopic: 2)))
        var ids: [EventID] = []
        for _ in 0..<5 { ids.append(try bus.publish("a").wait().id) }
        bus.broker.sweep()
        let topic = try TopicName("a")
        #expect(bus.eventually { !bus.store.calls.withLockedValue { $0.retention.isEmpty } })
        let retention = bus.store.calls.withLockedValue { $0.retention }
        #expect(retention.last?.topics[topic] == ids[2])
        // Nothing new to forget: the next sweep sends nothing.
        bus.broker.sweep()
        usleep(50_000)
        #expect(bus.store.calls.withLockedValue { $0.retention.count } == retention.count)
        try bus.close()
    }
}
