import NIOCore
import Testing

@testable import EventBroker

@Suite struct EventHistoryTests {
    private let allocator = ByteBufferAllocator()

    private func event(_ id: UInt64, _ topics: String..., time: UInt64 = 0, data: String = "x") throws -> BrokerEvent {
        BrokerEvent(
            id: EventID(rawValue: id), topics: try topics.map { try TopicName($0) }, eventType: nil, data: data,
            dataIsJSON: false, timeMilliseconds: time, retryMilliseconds: nil, isPrivate: false,
            allocator: self.allocator)
    }

    private func selectors(_ values: String...) throws -> [TopicSelector] {
        try values.map { try TopicSelector($0) }
    }

    private func ids(_ events: [BrokerEvent]) -> [UInt64] { events.map(\.id.rawValue) }

    private func retained(_ history: EventHistory, _ selectors: String...) throws -> [UInt64] {
        self.ids(
            history.events(
                after: .zero, selectors: try selectors.map { try TopicSelector($0) }, includeBroadcast: false))
    }

    /// The ids `events(after:selectors:includeBroadcast:limit:)` returns.
    private func ids(
        _ history: EventHistory, after: UInt64, _ selectors: String..., includeBroadcast: Bool = false,
        limit: Int = .max
    ) throws -> [UInt64] {
        let selectors = try selectors.map { try TopicSelector($0) }
        return self.ids(
            history.events(
                after: EventID(rawValue: after), selectors: selectors, includeBroadcast: includeBroadcast, limit: limit)
        )
    }

    /// The number of entries in the timeline, live or count-evicted.
    private func timelineCount(_ history: EventHistory) throws -> Int { history.timelineEntries }

    // MARK: Count bound

    @Test func countBoundKeepsTheNewestEventsPerTopicAndRecordsTheHorizon() throws {
        var history = EventHistory(limits: HistoryLimits(eventsPerTopic: 3, maxAge: nil))
        for id in UInt64(101)...105 { history.append(try self.event(id, "a"), nowMilliseconds: 0) }
        history.append(try self.event(106, "b"), nowMilliseconds: 0)

        #expect(try self.retained(history, "a") == [103, 104, 105])
        #expect(try self.retained(history, "b") == [106])
        #expect(history.count(of: try TopicName("a")) == 3)
        #expect(history.oldestEventID(of: try TopicName("a")) == EventID(rawValue: 103))
        #expect(history.lastEventID(of: try TopicName("a")) == EventID(rawValue: 105))
        #expect(history.horizon(of: try TopicName("a")) == EventID(rawValue: 102))
        #expect(history.horizon(of: try TopicName("b")) == .zero)
        #expect(history.timelineEvictedThrough == .zero)
        #expect(history.liveEntries == 4)
        #expect(history.topicCount == 2)
        #expect(Set(history.retainedTopics) == [try TopicName("a"), try TopicName("b")])
    }

    @Test func unknownTopicHasNothing() throws {
        let history = EventHistory(limits: HistoryLimits())
        let topic = try TopicName("nothing")
        #expect(history.count(of: topic) == 0)
        #expect(history.lastEventID(of: topic) == nil)
        #expect(history.oldestEventID(of: topic) == nil)
        #expect(history.horizon(of: topic) == .zero)
        #expect(try self.retained(history, "nothing").isEmpty)
    }

    @Test func zeroLimitsKeepNothing() throws {
        var noEvents = EventHistory(limits: HistoryLimits(eventsPerTopic: 0))
        noEvents.append(try self.event(101, "a"), nowMilliseconds: 0)
        #expect(noEvents.liveEntries == 0)
        #expect(try self.retained(noEvents, "a").isEmpty)

        var noBytes = EventHistory(limits: HistoryLimits(maxBytes: 0))
        noBytes.append(try self.event(101, "a"), nowMilliseconds: 0)
        #expect(noBytes.liveEntries == 0)
        #expect(noBytes.totalBytes == 0)
    }

    // MARK: Byte bound

    @Test func byteBoundEvictsTheGloballyOldestFirstAcrossTopics() throws {
        let cost = try self.event(101, "a").historyCost
        var history = EventHistory(limits: HistoryLimits(maxBytes: 3 * cost, maxAge: nil))
        for (id, topic) in [(101, "a"), (102, "b"), (103, "a"), (104, "b"), (105, "a")] as [(UInt64, String)] {
            history.append(try self.event(id, topic), nowMilliseconds: 0)
            #expect(history.totalBytes <= 3 * cost)
        }
        #expect(try self.retained(history, "a") == [103, 105])
        #expect(try self.retained(history, "b") == [104])
        #expect(history.totalBytes == 3 * cost)
        #expect(history.liveEntries == 3)
        #expect(history.timelineEvictedThrough == EventID(rawValue: 102))
        // Timeline eviction is global: every topic's horizon moves, even one that never had events.
        #expect(history.horizon(of: try TopicName("b")) == EventID(rawValue: 102))
        #expect(history.horizon(of: try TopicName("elsewhere")) == EventID(rawValue: 102))
    }

    @Test func byteBoundDropsATopicWhoseLastEventIsEvicted() throws {
        let cost = try self.event(101, "a").historyCost
        var history = EventHistory(limits: HistoryLimits(maxBytes: 2 * cost, maxAge: nil))
        history.append(try self.event(101, "a"), nowMilliseconds: 0)
        history.append(try self.event(102, "b"), nowMilliseconds: 0)
        history.append(try self.event(103, "c"), nowMilliseconds: 0)
        #expect(Set(history.retainedTopics) == [try TopicName("b"), try TopicName("c")])
        #expect(history.lastEventID(of: try TopicName("a")) == nil)
        #expect(history.horizon(of: try TopicName("a")) == EventID(rawValue: 101))
    }

    @Test func eventLargerThanTheByteBoundIsNotRetained() throws {
        let small = try self.event(101, "a")
        var history = EventHistory(limits: HistoryLimits(maxBytes: small.historyCost + 10, maxAge: nil))
        history.append(small, nowMilliseconds: 0)
        history.append(try self.event(102, "a", data: String(repeating: "z", count: 1000)), nowMilliseconds: 0)
        #expect(try self.retained(history, "a").isEmpty)
        #expect(history.totalBytes == 0)
        #expect(history.timelineEvictedThrough == EventID(rawValue: 102))
    }

    @Test func historyCostIsTheChunkPlusAFixedOverhead() throws {
        let event = try self.event(101, "a", data: "hello")
        #expect(event.historyCost == event.sseChunk.readableBytes + 128)
    }

    /// `totalBytes` must be the cost of what is retained, whatever sizes the count bound drops.
    @Test func countEvictionReleasesTheDroppedEventsBytes() throws {
        var history = EventHistory(limits: HistoryLimits(eventsPerTopic: 1, maxAge: nil))
        let big = try self.event(101, "a", data: String(repeating: "z", count: 1000))
        let small = try self.event(102, "a", data: "x")
        history.append(big, nowMilliseconds: 0)
        #expect(history.totalBytes == big.historyCost)
        history.append(small, nowMilliseconds: 0)  // count-evicts `big`
        #expect(try self.retained(history, "a") == [102])
        #expect(history.totalBytes == small.historyCost)

        let bigAgain = try self.event(103, "a", data: String(repeating: "z", count: 1000))
        history.append(bigAgain, nowMilliseconds: 0)  // count-evicts `small`
        #expect(history.totalBytes == bigAgain.historyCost)
    }

    // MARK: Age bound

    @Test func ageBoundEvictsEventsOlderThanMaxAge() throws {
        var history = EventHistory(limits: HistoryLimits(maxAge: .seconds(10)))
        for (index, id) in (UInt64(101)...104).enumerated() {
            let time = UInt64(index + 1) * 1000
            history.append(try self.event(id, "a", time: time), nowMilliseconds: time)
        }
        #expect(try self.retained(history, "a") == [101, 102, 103, 104])

        history.evictExpired(nowMilliseconds: 12_500)  // cutoff 2 500: drops 1 000 and 2 000
        #expect(try self.retained(history, "a") == [103, 104])
        #expect(history.timelineEvictedThrough == EventID(rawValue: 102))

        history.evictExpired(nowMilliseconds: 13_000)  // exactly 10 s old is kept
        #expect(try self.retained(history, "a") == [103, 104])
        history.evictExpired(nowMilliseconds: 13_001)
        #expect(try self.retained(history, "a") == [104])
    }

    @Test func appendAppliesTheAgeBound() throws {
        var history = EventHistory(limits: HistoryLimits(maxAge: .seconds(10)))
        history.append(try self.event(101, "a", time: 1_000), nowMilliseconds: 1_000)
        history.append(try self.event(102, "b", time: 5_000), nowMilliseconds: 5_000)
        history.append(try self.event(103, "a", time: 30_000), nowMilliseconds: 30_000)
        #expect(try self.retained(history, "a", "b") == [103])
        #expect(history.liveEntries == 1)
        #expect(history.totalBytes == (try self.event(103, "a", time: 30_000)).historyCost)
    }

    @Test func ageBoundHonoursFractionsOfASecond() throws {
        var history = EventHistory(limits: HistoryLimits(maxAge: .milliseconds(1500)))
        history.append(try self.event(101, "a", time: 1_000), nowMilliseconds: 1_000)
        history.append(try self.event(102, "a", time: 2_000), nowMilliseconds: 2_000)
        history.evictExpired(nowMilliseconds: 3_400)  // cutoff 1 900
        #expect(try self.retained(history, "a") == [102])
    }

    @Test func noMaxAgeKeepsOldEvents() throws {
        var history = EventHistory(limits: HistoryLimits(maxAge: nil))
        history.append(try self.event(101, "a", time: 1), nowMilliseconds: 1)
        history.evictExpired(nowMilliseconds: 1_000_000_000)
        #expect(try self.retained(history, "a") == [101])
    }

    /// A count-evicted entry at the head of the timeline is old; the live event behind it is fresh and must stay.
    @Test func ageEvictionKeepsFreshEventsBehindCountEvictedOnes() throws {
        var history = EventHistory(limits: HistoryLimits(eventsPerTopic: 1, maxAge: .seconds(10)))
        history.append(try self.event(101, "a", time: 1_000), nowMilliseconds: 1_000)
        history.append(try self.event(102, "a", time: 20_000), nowMilliseconds: 20_000)  // count-evicts 101
        #expect(try self.retained(history, "a") == [102])
        #expect(history.timelineEvictedThrough < EventID(rawValue: 102))

        history.evictExpired(nowMilliseconds: 25_000)
        #expect(try self.retained(history, "a") == [102])
    }

    // MARK: Reading

    @Test func eventsAfterAreIDOrderedAndDeduplicated() throws {
        var history = EventHistory(limits: HistoryLimits())
        let both = try self.event(101, "a", "b")
        history.append(both, nowMilliseconds: 0)
        history.append(try self.event(102, "a"), nowMilliseconds: 0)
        history.append(try self.event(103, "b"), nowMilliseconds: 0)
        history.append(try self.event(104, "b", "a"), nowMilliseconds: 0)
        history.append(try self.event(105, "c"), nowMilliseconds: 0)

        let events = history.events(after: .zero, selectors: try self.selectors("a", "b"), includeBroadcast: false)
        #expect(self.ids(events) == [101, 102, 103, 104])
        #expect(events[0] === both)
        #expect(try self.ids(history, after: 101, "a", "b") == [102, 103, 104])
        #expect(try self.ids(history, after: 104, "a", "b") == [])
        #expect(try self.ids(history, after: 0, "a", "a") == [101, 102, 104])
        #expect(try self.ids(history, after: 0, "b", "a") == [101, 102, 103, 104])
    }

    @Test func eventOnSeveralTopicsIsStoredOnceAndReferencedByEachRing() throws {
        var history = EventHistory(limits: HistoryLimits())
        history.append(try self.event(101, "a", "b"), nowMilliseconds: 0)
        let fromA = history.events(after: .zero, selectors: try self.selectors("a"), includeBroadcast: false)
        let fromB = history.events(after: .zero, selectors: try self.selectors("b"), includeBroadcast: false)
        #expect(fromA.count == 1)
        #expect(fromB.count == 1)
        #expect(fromA[0] === fromB[0])
    }

    @Test func eventsAfterAnIDBetweenRetainedOnes() throws {
        var history = EventHistory(limits: HistoryLimits())
        for id in [UInt64(101), 103, 105, 107, 109] { history.append(try self.event(id, "a"), nowMilliseconds: 0) }
        #expect(try self.ids(history, after: 104, "a") == [105, 107, 109])
        #expect(try self.ids(history, after: 100, "a") == [101, 103, 105, 107, 109])
        #expect(try self.ids(history, after: 101, "a") == [103, 105, 107, 109])
        #expect(try self.ids(history, after: 108, "a") == [109])
        #expect(try self.ids(history, after: 109, "a") == [])
        #expect(try self.ids(history, after: 500, "a") == [])
    }

    @Test func wildcardSelectorsCollectMatchingTopics() throws {
        var history = EventHistory(limits: HistoryLimits())
        history.append(try self.event(101, "chat/x"), nowMilliseconds: 0)
        history.append(try self.event(102, "news"), nowMilliseconds: 0)
        history.append(try self.event(103, "chat/y"), nowMilliseconds: 0)
        history.append(try self.event(104, "chat/y/deep"), nowMilliseconds: 0)
        history.append(try self.event(105, "chat/x", "chat/y"), nowMilliseconds: 0)
        history.append(try self.event(106, "$presence/chat"), nowMilliseconds: 0)

        #expect(try self.retained(history, "chat/*") == [101, 103, 105])
        #expect(try self.retained(history, "chat/**") == [101, 103, 104, 105])
        #expect(try self.retained(history, "**") == [101, 102, 103, 104, 105])
        #expect(try self.retained(history, "news", "chat/*") == [101, 102, 103, 105])
        #expect(try self.retained(history, "chat/*", "chat/**") == [101, 103, 104, 105])
        #expect(try self.retained(history, "$presence/*") == [106])
        #expect(try self.ids(history, after: 103, "chat/**") == [104, 105])
    }

    @Test func includeBroadcastAddsBroadcastEvents() throws {
        var history = EventHistory(limits: HistoryLimits())
        history.append(try self.event(101, "a"), nowMilliseconds: 0)
        history.append(try self.event(102, "$broadcast"), nowMilliseconds: 0)
        history.append(try self.event(103, "b"), nowMilliseconds: 0)

        #expect(try self.ids(history, after: 0, "a") == [101])
        #expect(try self.ids(history, after: 0, "a", includeBroadcast: true) == [101, 102])
        #expect(try self.ids(history, after: 0, "**") == [101, 103])
        #expect(try self.ids(history, after: 0, "**", includeBroadcast: true) == [101, 102, 103])
        #expect(try self.ids(history, after: 0, "a", "*") == [101, 103])
        #expect(try self.ids(history, after: 0, "a", "*", includeBroadcast: true) == [101, 102, 103])
        #expect(try self.ids(history, after: 102, "a", includeBroadcast: true) == [])
        // Naming the broadcast topic and including it yields it once.
        #expect(try self.ids(history, after: 0, "$broadcast", includeBroadcast: true) == [102])
    }

    @Test func limitKeepsTheOldestEventsAfterTheID() throws {
        var history = EventHistory(limits: HistoryLimits())
        for id in UInt64(101)...110 {
            history.append(try self.event(id, id.isMultiple(of: 2) ? "a" : "b"), nowMilliseconds: 0)
        }
        #expect(try self.ids(history, after: 0, "a", "b", limit: 3) == [101, 102, 103])
        #expect(try self.ids(history, after: 105, "a", "b", limit: 2) == [106, 107])
        #expect(try self.ids(history, after: 0, "a", "b", limit: 0) == [])
        #expect(try self.ids(history, after: 0, "a", "b", limit: 100).count == 10)
    }

    @Test func horizonReportsTheNewestDroppedAndOldestRetainedIDs() throws {
        var history = EventHistory(limits: HistoryLimits(eventsPerTopic: 2, maxAge: nil))
        for id in UInt64(101)...104 { history.append(try self.event(id, "a"), nowMilliseconds: 0) }
        history.append(try self.event(105, "b"), nowMilliseconds: 0)
        history.append(try self.event(106, "$broadcast"), nowMilliseconds: 0)

        let a = history.horizon(selectors: try self.selectors("a"), includeBroadcast: false)
        #expect(a.dropped == EventID(rawValue: 102))
        #expect(a.oldest == EventID(rawValue: 103))

        let b = history.horizon(selectors: try self.selectors("b"), includeBroadcast: false)
        #expect(b.dropped == .zero)
        #expect(b.oldest == EventID(rawValue: 105))

        let both = history.horizon(selectors: try self.selectors("**"), includeBroadcast: false)
        #expect(both.dropped == EventID(rawValue: 102))
        #expect(both.oldest == EventID(rawValue: 103))

        let bWithBroadcast = history.horizon(selectors: try self.selectors("b"), includeBroadcast: true)
        #expect(bWithBroadcast.oldest == EventID(rawValue: 105))

        let none = history.horizon(selectors: try self.selectors("nothing"), includeBroadcast: false)
        #expect(none.dropped == .zero)
        #expect(none.oldest == nil)
    }

    // MARK: Memory

    @Test func longRunOfCountEvictionsKeepsMemoryBounded() throws {
        var history = EventHistory(limits: HistoryLimits(eventsPerTopic: 10, maxAge: nil))
        var largestTimeline = 0
        for id in UInt64(1_000_000)..<1_100_000 {
            history.append(try self.event(id, "busy"), nowMilliseconds: 0)
            if id % 97 == 0 { largestTimeline = max(largestTimeline, try self.timelineCount(history)) }
        }
        #expect(history.liveEntries == 10)
        #expect(history.count(of: try TopicName("busy")) == 10)
        #expect(try self.retained(history, "busy") == Array(1_099_990..<1_100_000))
        #expect(history.totalBytes == 10 * (try self.event(1_000_000, "busy")).historyCost)
        #expect(history.horizon(of: try TopicName("busy")) == EventID(rawValue: 1_099_989))
        // Dead timeline entries are compacted away once they outnumber live ones by far.
        #expect(largestTimeline <= 2 * 10 + 1024)
        #expect(try self.timelineCount(history) <= 2 * 10 + 1024)
    }
}
