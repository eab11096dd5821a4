import NIOCore
import NIOEmbedded
import Testing

@testable import EventBroker

@Suite struct BrokerTests {
    /// The broker's boot time, and so its first event id.
    static let boot: UInt64 = 1_700_000_000_000_000

    private func id(_ offset: UInt64) -> EventID { EventID(rawValue: Self.boot + offset) }

    /// No batch window: on an embedded loop, a delivery happens when the test runs the loop.
    static let atOnce = BusConfiguration(batchWindow: .zero)

    // MARK: Publishing

    @Test func publishReturnsIncreasingIDsStartingAtBootTime() throws {
        let bus = Bus()
        defer { bus.close() }
        let first = try bus.publish("a")
        let second = try bus.publish("b")
        let third = try bus.publish("a")
        #expect([first.id, second.id, third.id] == [self.id(0), self.id(1), self.id(2)])
        #expect(first.topics == [try TopicName("a")])
        #expect(!first.isReplay)
        #expect(bus.broker.bootTimeMilliseconds == Self.boot / 1000)
        #expect(bus.broker.stats().lastEventID == third.id)
    }

    @Test func publishCountsEachSelectingSubscriberOnce() throws {
        let bus = Bus()
        defer { bus.close() }
        try bus.subscribe(RecordingSubscriber("exact"), ["chat/a"], on: bus.loop1)
        try bus.subscribe(RecordingSubscriber("wildcard"), ["chat/*"], on: bus.loop2)
        try bus.subscribe(RecordingSubscriber("multi"), ["chat/a", "chat/**"], on: bus.loop1)
        try bus.subscribe(RecordingSubscriber("other"), ["news"], on: bus.loop2)

        #expect(try bus.publish("chat/a").subscribers == 3)
        #expect(try bus.publish("chat/b").subscribers == 2)
        #expect(try bus.publish("chat/a/b").subscribers == 1)
        #expect(try bus.publish("news").subscribers == 1)
        #expect(try bus.publish("sports").subscribers == 0)
        #expect(try bus.publish("chat/a", "news").subscribers == 4)
    }

    @Test func everySubscriberOnEveryLoopGetsTheSameEventInstance() throws {
        let bus = Bus()
        defer { bus.close() }
        let subscribers = [
            RecordingSubscriber("1a"), RecordingSubscriber("1b"), RecordingSubscriber("2a"), RecordingSubscriber("2b"),
        ]
        try bus.subscribe(subscribers[0], ["a"], on: bus.loop1)
        try bus.subscribe(subscribers[1], ["**"], on: bus.loop1)
        try bus.subscribe(subscribers[2], ["a"], on: bus.loop2)
        try bus.subscribe(subscribers[3], ["a", "b"], on: bus.loop2)

        let result = try bus.publish("a", data: "{\"v\":1}", eventType: "update")
        #expect(result.subscribers == 4)
        #expect(subscribers.allSatisfy { $0.events.isEmpty }, "delivery waits for the loops")
        bus.run()

        let event = try #require(subscribers[0].events.first)
        for subscriber in subscribers {
            #expect(subscriber.events.count == 1)
            #expect(subscriber.events.first === event, "\(subscriber.clientID)")
        }
        #expect(event.id == result.id)
        #expect(event.topics == [try TopicName("a")])
        #expect(event.eventType == "update")
        #expect(event.data == "{\"v\":1}")
        #expect(event.timeMilliseconds == Self.boot / 1000)
        #expect(String(buffer: event.sseChunk) == "32\r\nid: 1700000000000000\nevent: update\ndata: {\"v\":1}\n\n\r\n")
        #expect(
            event.sseChunk
                == SSEFrame.encode(id: event.id, event: "update", data: "{\"v\":1}", allocator: ByteBufferAllocator()))

        // History holds the very same instance.
        let late = RecordingSubscriber("late")
        let start = try bus.subscribe(late, ["a"], on: bus.loop1, lastEventID: "0")
        #expect(start.replay.count == 1)
        #expect(start.replay.first === event)
    }

    @Test func publishHandsEachLoopWithSubscribersOneExecute() throws {
        let loop1 = CountingEventLoop()
        let loop2 = CountingEventLoop()
        let clock = ManualClock(microseconds: Self.boot)
        let broker = Broker(eventLoops: [loop1, loop2], configuration: Self.atOnce, clock: clock.brokerClock)
        defer {
            broker.shutdown()
            #expect(throws: Never.self) { try loop1.base.syncShutdownGracefully() }
            #expect(throws: Never.self) { try loop2.base.syncShutdownGracefully() }
        }
        loop1.base.run()
        loop2.base.run()
        let onLoop1 = (0..<3).map { RecordingSubscriber("one-\($0)") }
        for subscriber in onLoop1 {
            _ = try broker.subscribe0(
                subscriber, selectors: [try TopicSelector("a")], lastEventID: nil, transport: .sse, on: loop1)
        }
        let request = PublishRequest(topics: [try TopicName("a")], data: "x")

        var before = (loop1.executeCount, loop2.executeCount)
        #expect(try broker.publish(request).subscribers == 3)
        #expect(loop1.executeCount == before.0 + 1)
        #expect(loop2.executeCount == before.1, "no subscribers on loop 2: nothing scheduled there")

        let onLoop2 = RecordingSubscriber("two")
        _ = try broker.subscribe0(
            onLoop2, selectors: [try TopicSelector("a")], lastEventID: nil, transport: .sse, on: loop2)
        before = (loop1.executeCount, loop2.executeCount)
        #expect(try broker.publish(request).subscribers == 4)
        #expect(loop1.executeCount == before.0, "loop 1 has not run yet: the event joins its pending batch")
        #expect(loop2.executeCount == before.1 + 1)

        before = (loop1.executeCount, loop2.executeCount)
        #expect(try broker.publish(PublishRequest(topics: [try TopicName("nobody")], data: "x")).subscribers == 0)
        #expect(loop1.executeCount == before.0)
        #expect(loop2.executeCount == before.1)

        loop1.base.run()
        loop2.base.run()
        #expect(onLoop1.allSatisfy { $0.events.count == 2 && $0.deliveries == 2 })
        #expect(onLoop2.events.count == 1)
    }

    @Test func aBurstCostsOneExecutePerLoopAndOneFlushPerSubscriber() throws {
        let loop = CountingEventLoop()
        let broker = Broker(
            eventLoops: [loop], configuration: Self.atOnce, clock: ManualClock(microseconds: Self.boot).brokerClock)
        defer {
            broker.shutdown()
            #expect(throws: Never.self) { try loop.base.syncShutdownGracefully() }
        }
        loop.base.run()
        let subscribers = (0..<10).map { RecordingSubscriber("s\($0)") }
        for subscriber in subscribers {
            _ = try broker.subscribe0(
                subscriber, selectors: [try TopicSelector("burst")], lastEventID: nil, transport: .sse, on: loop)
        }
        let before = loop.executeCount
        var ids: [EventID] = []
        for index in 0..<50 {
            ids.append(try broker.publish(PublishRequest(topics: [try TopicName("burst")], data: "e\(index)")).id)
        }
        #expect(loop.executeCount == before + 1)
        loop.base.run()
        for subscriber in subscribers {
            #expect(subscriber.ids == ids)
            #expect(subscriber.flushes == 1)
        }
        // The next burst is a new task.
        _ = try broker.publish(PublishRequest(topics: [try TopicName("burst")], data: "later"))
        #expect(loop.executeCount == before + 2)
        loop.base.run()
        #expect(subscribers.allSatisfy { $0.flushes == 2 && $0.events.count == 51 })
    }

    /// A loop busy with fan-out (a delivery flushed `busyConnections` connections or more) holds what follows within
    /// the window until it ends, and each subscriber gets those events in one flush.
    @Test func aBusyDeliveryHoldsTheEventsThatFollowUntilTheWindowEnds() throws {
        try self.withWindowedBroker(subscribers: SubscriberShard.busyConnections) { loop, broker, subscribers in
            let topic = try TopicName("window")
            let before = loop.executeCount
            let first = try broker.publish(PublishRequest(topics: [topic], data: "first")).id
            #expect(loop.executeCount == before + 1)
            loop.base.run()
            #expect(subscribers.allSatisfy { $0.ids == [first] && $0.flushes == 1 })

            let second = try broker.publish(PublishRequest(topics: [topic], data: "second")).id
            let third = try broker.publish(PublishRequest(topics: [topic], data: "third")).id
            #expect(loop.executeCount == before + 1)
            loop.base.run()
            loop.base.advanceTime(by: .seconds(5))
            #expect(subscribers.allSatisfy { $0.ids == [first] }, "held until the window ends")
            loop.base.advanceTime(by: .seconds(5))
            #expect(subscribers.allSatisfy { $0.ids == [first, second, third] && $0.flushes == 2 })
        }
    }

    /// A delivery to fewer connections holds nothing back, whatever the window: a request and its reply going back
    /// and forth through the broker are not slowed down.
    @Test func aSmallDeliveryHoldsNothingBack() throws {
        try self.withWindowedBroker(subscribers: SubscriberShard.busyConnections - 1) { loop, broker, subscribers in
            var ids: [EventID] = []
            for index in 0..<5 {
                ids.append(try broker.publish(PublishRequest(topics: [try TopicName("window")], data: "\(index)")).id)
                loop.base.run()
                #expect(subscribers.allSatisfy { $0.ids == ids })
            }
            #expect(subscribers.allSatisfy { $0.flushes == 5 })
        }
    }

    /// A broker on one counting loop with a 10 s batch window and `count` subscribers to `window`, for `body`.
    private func withWindowedBroker(
        subscribers count: Int, _ body: (CountingEventLoop, Broker, [RecordingSubscriber]) throws -> Void
    ) throws {
        let loop = CountingEventLoop()
        let broker = Broker(
            eventLoops: [loop], configuration: BusConfiguration(batchWindow: .seconds(10)),
            clock: ManualClock(microseconds: Self.boot).brokerClock)
        defer {
            broker.shutdown()
            #expect(throws: Never.self) { try loop.base.syncShutdownGracefully() }
        }
        loop.base.run()
        let subscribers = (0..<count).map { RecordingSubscriber("s\($0)") }
        for subscriber in subscribers {
            _ = try broker.subscribe0(
                subscriber, selectors: [try TopicSelector("window")], lastEventID: nil, transport: .sse, on: loop)
        }
        try body(loop, broker, subscribers)
    }

    @Test func loopWithoutSubscribersIsNotHandedTheEvent() throws {
        let bus = Bus()
        defer { bus.close() }
        let early = RecordingSubscriber("early")
        try bus.subscribe(early, ["a"], on: bus.loop1)
        _ = try bus.publish("a")

        // Subscribers that join before the loops run see whatever was handed to their loop.
        let lateOnLoop1 = RecordingSubscriber("late-1")
        let lateOnLoop2 = RecordingSubscriber("late-2")
        try bus.subscribe(lateOnLoop1, ["a"], on: bus.loop1)
        try bus.subscribe(lateOnLoop2, ["a"], on: bus.loop2)
        bus.run()

        #expect(early.ids == [self.id(0)])
        #expect(lateOnLoop1.deliveries == 1, "loop 1 was handed the event")
        #expect(lateOnLoop2.deliveries == 0, "loop 2 had no subscribers when it was published")
    }

    @Test func publishWithNoSubscribersReportsZeroAndKeepsTheEvent() throws {
        let bus = Bus()
        defer { bus.close() }
        let result = try bus.publish("lonely")
        #expect(result.subscribers == 0)
        bus.run()
        let info = try #require(bus.broker.topic(try TopicName("lonely")))
        #expect(info.subscribers == 0)
        #expect(info.historySize == 1)
        #expect(info.lastEventID == result.id)
    }

    @Test(arguments: ["$presence/chat", "$broadcast", "$x"])
    func publishingToAReservedTopicIsRefused(topic: String) throws {
        let bus = Bus()
        defer { bus.close() }
        let error = try #require(throws: BrokerError.self) { try bus.publish(topic) }
        #expect(error.code == .reservedTopic)
        let mixed = try #require(throws: BrokerError.self) { try bus.publish("a", topic) }
        #expect(mixed.code == .reservedTopic)
        #expect(try bus.publish("a").id == self.id(0), "refused publishes use no id")
        #expect(bus.broker.topic(try TopicName(topic)) == nil)
    }

    @Test func invalidPublishesAreRefusedWithTheirCode() throws {
        var configuration = BusConfiguration()
        configuration.maxTopicsPerPublish = 2
        let bus = Bus(configuration)
        defer { bus.close() }
        let a = try TopicName("a")
        let cases: [(PublishRequest, BrokerError.Code)] = [
            (PublishRequest(topics: [a], data: ""), .emptyData),
            (PublishRequest(topics: [], data: "x"), .invalidTopic),
            (PublishRequest(topics: [a, try TopicName("b"), try TopicName("c")], data: "x"), .tooManyTopics),
            (PublishRequest(topics: [a], data: "x", eventType: "a\nb"), .invalidEvent),
            (PublishRequest(topics: [a], data: "x", eventType: "a\rb"), .invalidEvent),
            (PublishRequest(topics: [a], data: "x", eventType: "a\tb"), .invalidEvent),
            (PublishRequest(topics: [a], data: "x", eventType: "a\u{7F}"), .invalidEvent),
            (PublishRequest(topics: [a], data: "x", eventType: ""), .invalidEvent),
            (PublishRequest(topics: [a], data: "x", eventType: String(repeating: "e", count: 129)), .invalidEvent),
        ]
        for (request, code) in cases {
            let error = try #require(throws: BrokerError.self) { try bus.broker.publish(request) }
            #expect(error.code == code, "\(request)")
            #expect(!error.message.isEmpty)
        }
        #expect(bus.broker.stats().lastEventID == nil, "refused publishes use no id")

        let longest = String(repeating: "e", count: 128)
        #expect(try bus.broker.publish(PublishRequest(topics: [a], data: "x", eventType: longest)).id == self.id(0))
        #expect(try bus.broker.publish(PublishRequest(topics: [a], data: "x", eventType: "café ✓")).id == self.id(1))
        #expect(try bus.publish("a", "b").topics.count == 2)
    }

    @Test func eventOnTwoSelectedTopicsReachesASubscriberOnce() throws {
        let bus = Bus()
        defer { bus.close() }
        let both = RecordingSubscriber("both")
        let wildcard = RecordingSubscriber("wildcard")
        try bus.subscribe(both, ["a", "b"], on: bus.loop1)
        try bus.subscribe(wildcard, ["*", "a"], on: bus.loop2)
        let result = try bus.publish("a", "b")
        #expect(result.subscribers == 2)
        bus.run()
        #expect(both.ids == [result.id])
        #expect(wildcard.ids == [result.id])
        let event = try #require(both.events.first)
        #expect(event.topics == [try TopicName("a"), try TopicName("b")])
    }

    @Test func repeatedTopicsArePublishedOnce() throws {
        let bus = Bus()
        defer { bus.close() }
        let subscriber = RecordingSubscriber("s")
        try bus.subscribe(subscriber, ["a"], on: bus.loop1)
        let result = try bus.publish("a", "a")
        #expect(result.topics == [try TopicName("a")])
        #expect(result.subscribers == 1)
        bus.run()
        #expect(subscriber.deliveries == 1)
        #expect(bus.broker.topic(try TopicName("a"))?.historySize == 1)
    }

    // MARK: Broadcast and direct messages

    @Test func broadcastReachesEverySubscriberAndIsStoredUnderBroadcast() throws {
        let bus = Bus()
        defer { bus.close() }
        let subscribers = [
            (RecordingSubscriber("a"), ["a"], bus.loop1),
            (RecordingSubscriber("b"), ["b/*"], bus.loop2),
            (RecordingSubscriber("xy"), ["x", "y"], bus.loop2),
            (RecordingSubscriber("all"), ["**"], bus.loop1),
            (RecordingSubscriber("presence"), ["$presence/*"], bus.loop1),
        ]
        for (subscriber, selectors, loop) in subscribers { try bus.subscribe(subscriber, selectors, on: loop) }

        let result = try bus.broker.broadcast(data: "maintenance at noon", eventType: "notice")
        #expect(result.subscribers == 5)
        #expect(result.topics == [.broadcast])
        bus.run()
        let event = try #require(subscribers[0].0.events.first)
        for (subscriber, _, _) in subscribers {
            #expect(subscriber.events.count == 1)
            #expect(subscriber.events.first === event, "\(subscriber.clientID)")
        }
        #expect(event.topics == [.broadcast])

        let info = try #require(bus.broker.topic(.broadcast))
        #expect(info.historySize == 1)
        #expect(info.lastEventID == result.id)

        // A resuming subscriber of any topic replays it.
        let resuming = RecordingSubscriber("resuming")
        let start = try bus.subscribe(resuming, ["elsewhere"], on: bus.loop2, lastEventID: "0")
        #expect(start.replay.map(\.id) == [result.id])
        #expect(start.gap == nil)
    }

    @Test func broadcastIsValidatedLikeAPublish() throws {
        let bus = Bus()
        defer { bus.close() }
        let empty = try #require(throws: BrokerError.self) { try bus.broker.broadcast(data: "") }
        #expect(empty.code == .emptyData)
        let badType = try #require(throws: BrokerError.self) { try bus.broker.broadcast(data: "x", eventType: "a\nb") }
        #expect(badType.code == .invalidEvent)
    }

    @Test func directMessageReachesOnlyItsTarget() throws {
        let bus = Bus()
        defer { bus.close() }
        let alone = RecordingSubscriber("alone")
        let phone = RecordingSubscriber("phone")
        let laptop = RecordingSubscriber("laptop")
        let poller = RecordingSubscriber("poller")
        try bus.subscribe(alone, ["a"], on: bus.loop1)
        try bus.subscribe(phone, ["b"], on: bus.loop2, userID: "u")
        try bus.subscribe(laptop, ["c"], on: bus.loop1, transport: .webSocket, userID: "u")
        try bus.subscribe(poller, ["d"], on: bus.loop2, transport: .longPoll, userID: "u")

        let toClient = try bus.broker.sendDirect(to: .client(alone.clientID), data: "psst")
        #expect(toClient.subscribers == 1)
        #expect(toClient.topics.isEmpty)
        bus.run()
        #expect(alone.ids == [toClient.id])
        #expect(phone.events.isEmpty && laptop.events.isEmpty && poller.events.isEmpty)

        let toUser = try bus.broker.sendDirect(to: .user("u"), data: "hello u", eventType: "dm")
        #expect(toUser.subscribers == 2)
        bus.run()
        #expect(phone.ids == [toUser.id])
        #expect(laptop.ids == [toUser.id])
        #expect(phone.events.first === laptop.events.first)
        #expect(poller.events.isEmpty, "long polls do not take direct messages")
        #expect(alone.ids == [toClient.id])

        // Direct messages are not history.
        #expect(bus.broker.stats().historyEvents == 0)
        #expect(bus.broker.topics().allSatisfy { $0.historySize == 0 })
    }

    @Test func directMessageToAnUnknownClientIsRefused() throws {
        let bus = Bus()
        defer { bus.close() }
        let poller = RecordingSubscriber("poller")
        try bus.subscribe(poller, ["d"], on: bus.loop2, transport: .longPoll, userID: "u")
        let recipients: [DirectRecipient] = [
            .client(ClientID(rawValue: "ghost")), .user("nobody"), .client(poller.clientID), .user("u"),
        ]
        for recipient in recipients {
            let error = try #require(throws: BrokerError.self) {
                try bus.broker.sendDirect(to: recipient, data: "x")
            }
            #expect(error.code == .clientNotFound, "\(recipient)")
        }
        let empty = try #require(throws: BrokerError.self) {
            try bus.broker.sendDirect(to: .client(poller.clientID), data: "")
        }
        #expect(empty.code == .emptyData)
    }

    // MARK: Idempotency

    @Test func repeatedIdempotencyKeyReturnsTheFirstResultAndDeliversOnce() throws {
        let bus = Bus()
        defer { bus.close() }
        let subscriber = RecordingSubscriber("s")
        try bus.subscribe(subscriber, ["a"], on: bus.loop1)

        let first = try bus.publish("a", data: "first", key: "k1")
        #expect(!first.isReplay)
        let retry = try bus.publish("a", data: "retried", key: "k1")
        #expect(retry.isReplay)
        #expect(retry.id == first.id)
        #expect(retry.topics == first.topics)
        #expect(retry.subscribers == first.subscribers)

        bus.run()
        #expect(subscriber.deliveries == 1)
        #expect(subscriber.events.map(\.data) == ["first"])
        #expect(bus.broker.topic(try TopicName("a"))?.historySize == 1)

        let other = try bus.publish("a", key: "k2")
        #expect(!other.isReplay)
        #expect(other.id == self.id(1))
    }

    @Test func idempotencyKeyIsForgottenAfterItsWindow() throws {
        var configuration = BusConfiguration()
        configuration.idempotencyWindow = .seconds(10)
        let bus = Bus(configuration)
        defer { bus.close() }
        let first = try bus.publish("a", key: "k")

        bus.clock.advance(byMilliseconds: 9_000)
        bus.loop1.advanceTime(by: .seconds(1))  // sweep
        #expect(try bus.publish("a", key: "k").isReplay)

        bus.clock.advance(byMilliseconds: 1_000)
        bus.loop1.advanceTime(by: .seconds(1))  // sweep
        let later = try bus.publish("a", key: "k")
        #expect(!later.isReplay)
        #expect(later.id > first.id)
    }

    // MARK: Subscribing and resuming

    @Test func resumingReplaysExactlyTheEventsAfterTheLastID() throws {
        let bus = Bus()
        defer { bus.close() }
        for _ in 0..<4 { _ = try bus.publish("a") }
        _ = try bus.publish("b")

        let subscriber = RecordingSubscriber("s")
        let start = try bus.subscribe(subscriber, ["a"], on: bus.loop1, lastEventID: self.id(1).description)
        #expect(start.replay.map(\.id) == [self.id(2), self.id(3)])
        #expect(start.gap == nil)
        #expect(start.handoffID == self.id(4))

        _ = try bus.publish("a")
        bus.run()
        #expect(subscriber.ids == [self.id(2), self.id(3), self.id(5)])
    }

    @Test func resumingWhileDeliveriesAreQueuedNeitherLosesNorRepeatsEvents() throws {
        let bus = Bus()
        defer { bus.close() }
        let live = RecordingSubscriber("live")
        try bus.subscribe(live, ["a"], on: bus.loop1)
        _ = try bus.publish("a")
        _ = try bus.publish("a")
        bus.run()
        _ = try bus.publish("a")  // handed to loop 1, not yet run

        let resuming = RecordingSubscriber("resuming")
        let start = try bus.subscribe(resuming, ["a"], on: bus.loop1, lastEventID: self.id(0).description)
        #expect(start.replay.map(\.id) == [self.id(1), self.id(2)])
        #expect(start.handoffID == self.id(2))
        bus.run()  // the queued delivery of id 2 reaches the new subscriber too, and is dropped as old
        _ = try bus.publish("a")
        bus.run()

        #expect(resuming.ids == [self.id(1), self.id(2), self.id(3)])
        #expect(live.ids == [self.id(0), self.id(1), self.id(2), self.id(3)])
    }

    @Test func resumingFromBeforeADroppedEventReportsAGap() throws {
        var configuration = BusConfiguration()
        configuration.history = HistoryLimits(eventsPerTopic: 2)
        let bus = Bus(configuration)
        defer { bus.close() }
        for _ in 0..<4 { _ = try bus.publish("a") }  // keeps ids 2 and 3

        let behind = try bus.subscribe(
            RecordingSubscriber("behind"), ["a"], on: bus.loop1, lastEventID: "\(self.id(0))")
        #expect(behind.gap == HistoryGap(lastEventID: "\(self.id(0))", oldestAvailable: self.id(2)))
        #expect(behind.replay.map(\.id) == [self.id(2), self.id(3)])

        let justInTime = try bus.subscribe(
            RecordingSubscriber("just-in-time"), ["a"], on: bus.loop1, lastEventID: "\(self.id(1))")
        #expect(justInTime.gap == nil)
        #expect(justInTime.replay.map(\.id) == [self.id(2), self.id(3)])
    }

    @Test(arguments: ["abc", "", "-1", "1.5", " 1", "123456789012345678901234"])
    func unparseableLastIDReportsAGapAndReplaysEverythingRetained(lastEventID: String) throws {
        let bus = Bus()
        defer { bus.close() }
        for _ in 0..<3 { _ = try bus.publish("a") }
        let start = try bus.subscribe(RecordingSubscriber("s"), ["a"], on: bus.loop1, lastEventID: lastEventID)
        #expect(start.gap == HistoryGap(lastEventID: lastEventID, oldestAvailable: self.id(0)))
        #expect(start.replay.map(\.id) == [self.id(0), self.id(1), self.id(2)])
    }

    @Test func futureLastIDReportsAGapAndReplaysEverythingRetained() throws {
        let bus = Bus()
        defer { bus.close() }
        for _ in 0..<3 { _ = try bus.publish("a") }
        let future = self.id(3).description  // not issued yet
        let start = try bus.subscribe(RecordingSubscriber("s"), ["a"], on: bus.loop1, lastEventID: future)
        #expect(start.gap == HistoryGap(lastEventID: future, oldestAvailable: self.id(0)))
        #expect(start.replay.map(\.id) == [self.id(0), self.id(1), self.id(2)])
    }

    @Test func lastIDFromAnEarlierRunReportsAGap() throws {
        let bus = Bus()
        defer { bus.close() }
        _ = try bus.publish("a")
        let earlier = EventID(rawValue: Self.boot - 5).description
        let start = try bus.subscribe(RecordingSubscriber("s"), ["a"], on: bus.loop1, lastEventID: earlier)
        #expect(start.gap == HistoryGap(lastEventID: earlier, oldestAvailable: self.id(0)))
        #expect(start.replay.map(\.id) == [self.id(0)])
    }

    @Test func zeroReplaysEverythingRetainedWithoutAGap() throws {
        let bus = Bus()
        defer { bus.close() }
        let empty = try bus.subscribe(RecordingSubscriber("first"), ["a"], on: bus.loop1, lastEventID: "0")
        #expect(empty.replay.isEmpty)
        #expect(empty.gap == nil)

        _ = try bus.publish("a")
        _ = try bus.publish("b")
        _ = try bus.broker.broadcast(data: "all")
        _ = try bus.publish("a")
        let start = try bus.subscribe(RecordingSubscriber("second"), ["a"], on: bus.loop2, lastEventID: "0")
        #expect(start.replay.map(\.id) == [self.id(0), self.id(2), self.id(3)])
        #expect(start.gap == nil)
    }

    @Test func liveOnlySubscriptionReplaysNothing() throws {
        let bus = Bus()
        defer { bus.close() }
        _ = try bus.publish("a")
        let start = try bus.subscribe(RecordingSubscriber("s"), ["a"], on: bus.loop1)
        #expect(start.replay.isEmpty)
        #expect(start.gap == nil)
    }

    @Test func handoffIDIsTheLastIssuedID() throws {
        let bus = Bus()
        defer { bus.close() }
        let before = try bus.subscribe(RecordingSubscriber("before"), ["a"], on: bus.loop1)
        #expect(before.handoffID == EventID(rawValue: Self.boot - 1))

        _ = try bus.publish("a")
        _ = try bus.publish("elsewhere")
        let after = try bus.subscribe(RecordingSubscriber("after"), ["a"], on: bus.loop2)
        #expect(after.handoffID == self.id(1))

        let direct = try bus.broker.sendDirect(to: .client(ClientID(rawValue: "after")), data: "x")
        let last = try bus.subscribe(RecordingSubscriber("last"), ["a"], on: bus.loop1)
        #expect(last.handoffID == direct.id)
    }

    @Test func subscriptionSelectorsAreValidated() throws {
        var configuration = BusConfiguration()
        configuration.maxSelectorsPerSubscription = 2
        let bus = Bus(configuration)
        defer { bus.close() }
        let none = try #require(throws: BrokerError.self) {
            try bus.subscribe(RecordingSubscriber("none"), [], on: bus.loop1)
        }
        #expect(none.code == .invalidSelector)
        let many = try #require(throws: BrokerError.self) {
            try bus.subscribe(RecordingSubscriber("many"), ["a", "b", "c"], on: bus.loop1)
        }
        #expect(many.code == .tooManyTopics)
        #expect(bus.broker.shards[0].count0 == 0)
        #expect(bus.broker.stats().connections.values.allSatisfy { $0 == 0 })
    }

    @Test func afterUnsubscribingNothingMoreIsDeliveredAndCountsDrop() throws {
        let bus = Bus()
        defer { bus.close() }
        let one = RecordingSubscriber("one")
        let two = RecordingSubscriber("two")
        try bus.subscribe(one, ["a"], on: bus.loop1)
        try bus.subscribe(two, ["a", "b"], on: bus.loop2)
        #expect(bus.broker.shards[0].count0 == 1)
        #expect(bus.broker.shards[1].count0 == 1)
        #expect(try bus.publish("a").subscribers == 2)
        bus.run()

        bus.broker.unsubscribe0(one, selectors: [try TopicSelector("a")], on: bus.loop1)
        #expect(bus.broker.shards[0].count0 == 0)
        #expect(bus.broker.stats().connections[.sse] == 1)
        #expect(try bus.publish("a").subscribers == 1)
        bus.run()
        #expect(one.ids == [self.id(0)])
        #expect(two.ids == [self.id(0), self.id(1)])

        // Unsubscribing while a delivery is queued: it never arrives.
        #expect(try bus.publish("b").subscribers == 1)
        bus.broker.unsubscribe0(two, selectors: [try TopicSelector("a"), try TopicSelector("b")], on: bus.loop2)
        bus.run()
        #expect(two.ids == [self.id(0), self.id(1)])
        #expect(bus.broker.shards[1].count0 == 0)
        #expect(try bus.publish("a").subscribers == 0)
        #expect(bus.broker.topic(try TopicName("b"))?.subscribers == 0)

        // Idempotent.
        bus.broker.unsubscribe0(one, selectors: [try TopicSelector("a")], on: bus.loop1)
        #expect((bus.broker.stats().connections[.sse] ?? 0) == 0)
    }

    @Test func clientCanSubscribeAgainAfterUnsubscribing() throws {
        let bus = Bus()
        defer { bus.close() }
        let subscriber = RecordingSubscriber("s")
        try bus.subscribe(subscriber, ["a"], on: bus.loop1)
        bus.broker.unsubscribe0(subscriber, selectors: [try TopicSelector("a")], on: bus.loop1)
        try bus.subscribe(subscriber, ["b"], on: bus.loop2)
        #expect(try bus.publish("a").subscribers == 0)
        #expect(try bus.publish("b").subscribers == 1)
        bus.run()
        #expect(subscriber.ids == [self.id(1)])
    }

    // MARK: Reading

    @Test func topicsAndStatsReportSubscribersLastIDAndHistorySize() throws {
        let bus = Bus()
        defer { bus.close() }
        try bus.subscribe(RecordingSubscriber("news"), ["news"], on: bus.loop1)
        try bus.subscribe(RecordingSubscriber("chat"), ["chat/*"], on: bus.loop2, transport: .webSocket)
        try bus.subscribe(RecordingSubscriber("multi"), ["chat/a", "sports"], on: bus.loop1, transport: .longPoll)
        let first = try bus.publish("chat/a")
        let second = try bus.publish("chat/a")
        let weather = try bus.publish("weather")

        let topics = bus.broker.topics()
        #expect(topics.map(\.topic.value) == ["chat/a", "news", "sports", "weather"])
        let chat = TopicInfo(
            topic: try TopicName("chat/a"), subscribers: 2, lastEventID: second.id, historySize: 2,
            oldestEventID: first.id, memberCount: 0)
        #expect(topics[0] == chat)
        #expect(
            topics[1]
                == TopicInfo(
                    topic: try TopicName("news"), subscribers: 1, lastEventID: nil, historySize: 0, oldestEventID: nil,
                    memberCount: 1))
        #expect(topics[2].subscribers == 1)
        #expect(topics[2].historySize == 0)
        #expect(
            topics[3]
                == TopicInfo(
                    topic: try TopicName("weather"), subscribers: 0, lastEventID: weather.id, historySize: 1,
                    oldestEventID: weather.id, memberCount: 0))

        #expect(bus.broker.topic(try TopicName("chat/a")) == chat)
        #expect(bus.broker.topic(try TopicName("chat/b"))?.subscribers == 1, "a wildcard subscriber counts")
        #expect(bus.broker.topic(try TopicName("nothing")) == nil)

        let stats = bus.broker.stats()
        #expect(stats.connections == [.sse: 1, .webSocket: 1, .longPoll: 1])
        #expect(stats.historyEvents == 3)
        let retained = try bus.broker.history(selectors: [try TopicSelector("**")], after: nil, limit: 10).events
        #expect(stats.historyBytes == retained.map(\.historyCost).reduce(0, +))
        #expect(stats.lastEventID == weather.id)
    }

    @Test func statsCountsTheTopicsTheListingShows() throws {
        let bus = Bus()
        defer { bus.close() }
        try bus.subscribe(RecordingSubscriber("single"), ["news"], on: bus.loop1)
        try bus.subscribe(RecordingSubscriber("multi"), ["chat/a", "sports"], on: bus.loop2)
        _ = try bus.publish("weather")
        #expect(bus.broker.topics().count == 4)
        #expect(bus.broker.stats().topics == bus.broker.topics().count)
    }

    @Test func historyPagesThroughRetainedEvents() throws {
        let bus = Bus()
        defer { bus.close() }
        for _ in 0..<3 { _ = try bus.publish("a") }
        _ = try bus.broker.broadcast(data: "not in topic history")
        let selectors = [try TopicSelector("a")]

        let first = try bus.broker.history(selectors: selectors, after: nil, limit: 2)
        #expect(first.events.map(\.id) == [self.id(0), self.id(1)])
        #expect(first.gap == nil)
        #expect(first.nextAfter == self.id(1))

        let second = try bus.broker.history(selectors: selectors, after: first.nextAfter.description, limit: 2)
        #expect(second.events.map(\.id) == [self.id(2)])
        #expect(second.nextAfter == self.id(2))

        let third = try bus.broker.history(selectors: selectors, after: second.nextAfter.description, limit: 2)
        #expect(third.events.isEmpty)
        #expect(third.nextAfter == self.id(2))

        let none = try #require(throws: BrokerError.self) {
            try bus.broker.history(selectors: [], after: nil, limit: 1)
        }
        #expect(none.code == .invalidSelector)
    }

    @Test func shardLookupFindsOnlyTheBrokersLoops() {
        let bus = Bus()
        defer { bus.close() }
        #expect(bus.broker.shards.count == 2)
        #expect(bus.broker.shard(for: bus.loop1) === bus.broker.shards[0])
        #expect(bus.broker.shard(for: bus.loop2) === bus.broker.shards[1])
        #expect(bus.broker.shards[1].eventLoop === bus.loop2)
        let stranger = EmbeddedEventLoop()
        #expect(bus.broker.shard(for: stranger) == nil)
    }

    // MARK: Timers and shutdown

    @Test func heartbeatsReachEverySubscriberOncePerInterval() throws {
        var configuration = BusConfiguration()
        configuration.heartbeatInterval = .seconds(1)
        let bus = Bus(configuration)
        defer { bus.close() }
        let one = RecordingSubscriber("one")
        let other = RecordingSubscriber("other")
        let two = RecordingSubscriber("two")
        try bus.subscribe(one, ["a"], on: bus.loop1)
        try bus.subscribe(other, ["b"], on: bus.loop1)
        try bus.subscribe(two, ["a"], on: bus.loop2)

        bus.loop1.advanceTime(by: .milliseconds(999))
        #expect(one.heartbeats == 0)
        bus.loop1.advanceTime(by: .milliseconds(1))
        #expect(one.heartbeats == 1)
        #expect(other.heartbeats == 1)
        #expect(two.heartbeats == 0, "each loop beats on its own timer")

        bus.loop2.advanceTime(by: .seconds(1))
        #expect(two.heartbeats == 1)

        bus.loop1.advanceTime(by: .seconds(2))
        #expect(one.heartbeats == 3)
        #expect(one.events.isEmpty)

        bus.broker.unsubscribe0(other, selectors: [try TopicSelector("b")], on: bus.loop1)
        bus.loop1.advanceTime(by: .seconds(1))
        #expect(one.heartbeats == 4)
        #expect(other.heartbeats == 3)
    }

    @Test func sweepDropsEventsOlderThanMaxAge() throws {
        var configuration = BusConfiguration()
        configuration.history = HistoryLimits(maxAge: .seconds(10))
        let bus = Bus(configuration)
        defer { bus.close() }
        _ = try bus.publish("a")
        bus.clock.advance(byMilliseconds: 5_000)
        bus.loop1.advanceTime(by: .seconds(1))
        #expect(bus.broker.topic(try TopicName("a"))?.historySize == 1)

        bus.clock.advance(byMilliseconds: 5_001)
        bus.loop1.advanceTime(by: .seconds(1))
        #expect(bus.broker.topic(try TopicName("a")) == nil)
        #expect(bus.broker.stats().historyEvents == 0)
        #expect(bus.broker.stats().historyBytes == 0)
    }

    @Test func shutdownRefusesPublishingAndSubscribing() throws {
        var configuration = BusConfiguration()
        configuration.heartbeatInterval = .seconds(1)
        let bus = Bus(configuration)
        defer { bus.close() }
        let subscriber = RecordingSubscriber("s")
        try bus.subscribe(subscriber, ["a"], on: bus.loop1)
        #expect(!bus.broker.isShuttingDown)

        bus.broker.shutdown()
        bus.broker.shutdown()
        #expect(bus.broker.isShuttingDown)
        let publish = try #require(throws: BrokerError.self) { try bus.publish("a") }
        #expect(publish.code == .shuttingDown)
        let broadcast = try #require(throws: BrokerError.self) { try bus.broker.broadcast(data: "x") }
        #expect(broadcast.code == .shuttingDown)
        let direct = try #require(throws: BrokerError.self) {
            try bus.broker.sendDirect(to: .client(subscriber.clientID), data: "x")
        }
        #expect(direct.code == .shuttingDown)
        let subscribe = try #require(throws: BrokerError.self) {
            try bus.subscribe(RecordingSubscriber("late"), ["a"], on: bus.loop2)
        }
        #expect(subscribe.code == .shuttingDown)

        bus.loop1.advanceTime(by: .seconds(5))
        #expect(subscriber.heartbeats == 0, "timers stop")
        #expect(subscriber.events.isEmpty)
    }
}

// MARK: Fixture

extension BrokerTests {
    /// Two embedded loops, a broker over them, and a clock the test moves. Use on one thread; `close()` when done.
    struct Bus {
        let loop1 = EmbeddedEventLoop()
        let loop2 = EmbeddedEventLoop()
        let clock = ManualClock(microseconds: BrokerTests.boot)
        let broker: Broker

        /// `configuration`'s batch window is set to zero: embedded loops have no time of their own, and these tests
        /// deliver when they run the loops.
        init(_ configuration: BusConfiguration = BusConfiguration()) {
            var configuration = configuration
            configuration.batchWindow = .zero
            self.broker = Broker(
                eventLoops: [self.loop1, self.loop2], configuration: configuration, clock: self.clock.brokerClock)
            self.run()  // arms the heartbeat timers
        }

        func run() {
            self.loop1.run()
            self.loop2.run()
        }

        /// Subscribes on `loop` and writes the replay to the subscriber, as a handler does.
        @discardableResult
        func subscribe(
            _ subscriber: RecordingSubscriber, _ selectors: [String], on loop: EmbeddedEventLoop,
            lastEventID: String? = nil, transport: Transport = .sse, userID: String? = nil
        ) throws -> SubscriptionStart {
            let start = try self.broker.subscribe0(
                subscriber, selectors: try selectors.map { try TopicSelector($0) }, lastEventID: lastEventID,
                transport: transport, principal: userID.map { .token(AccessToken(subject: $0)) } ?? .open, on: loop)
            subscriber.replay(start)
            return start
        }

        @discardableResult
        func publish(_ topics: String..., data: String = "x", eventType: String? = nil, key: String? = nil) throws
            -> PublishResult
        {
            try self.broker.publish(
                PublishRequest(
                    topics: try topics.map { try TopicName($0) }, data: data, eventType: eventType, idempotencyKey: key)
            )
        }

        func close() {
            self.broker.shutdown()
            #expect(throws: Never.self) { try self.loop1.syncShutdownGracefully() }
            #expect(throws: Never.self) { try self.loop2.syncShutdownGracefully() }
        }
    }
}
