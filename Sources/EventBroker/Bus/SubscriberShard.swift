import NIOCore

/// The subscribers connected on one event loop, grouped by what they select. Fan-out on a loop happens here.
///
/// Confined to `eventLoop`: every method ending in `0` must run there, which is why the bus hands each shard one
/// `execute` per event rather than touching it from the publishing thread, and why delivery takes no lock.
/// `@unchecked Sendable` only so the `Broker` can hold it and schedule work on its loop.
public final class SubscriberShard: @unchecked Sendable {
    public let eventLoop: any EventLoop
    let index: Int
    private var exact: [TopicName: [ObjectIdentifier: any Subscriber]] = [:]
    private var wildcards: [TopicSelector: [ObjectIdentifier: any Subscriber]] = [:]
    private var all: [ClientID: any Subscriber] = [:]
    private var heartbeatTask: RepeatedTask?

    init(eventLoop: any EventLoop, index: Int) {
        self.eventLoop = eventLoop
        self.index = index
    }

    /// Subscribers currently on this loop (for tests and diagnostics).
    public var count0: Int {
        self.eventLoop.assertInEventLoop()
        return self.all.count
    }

    func startHeartbeats(every interval: Duration) {
        let amount = TimeAmount.nanoseconds(
            interval.components.seconds * 1_000_000_000 + interval.components.attoseconds / 1_000_000_000)
        guard amount > .zero else { return }
        self.eventLoop.execute {
            self.heartbeatTask = self.eventLoop.scheduleRepeatedTask(initialDelay: amount, delay: amount) { _ in
                self.heartbeat0()
            }
        }
    }

    func stopHeartbeats() {
        self.eventLoop.execute {
            self.heartbeatTask?.cancel()
            self.heartbeatTask = nil
        }
    }

    func add0(_ subscriber: any Subscriber, selectors: [TopicSelector]) {
        self.eventLoop.assertInEventLoop()
        let key = ObjectIdentifier(subscriber)
        self.all[subscriber.clientID] = subscriber
        for selector in selectors {
            if let topic = selector.exactTopic {
                self.exact[topic, default: [:]][key] = subscriber
            } else {
                self.wildcards[selector, default: [:]][key] = subscriber
            }
        }
    }

    func remove0(_ subscriber: any Subscriber, selectors: [TopicSelector]) {
        self.eventLoop.assertInEventLoop()
        let key = ObjectIdentifier(subscriber)
        self.all[subscriber.clientID] = nil
        for selector in selectors {
            if let topic = selector.exactTopic {
                self.exact[topic]?[key] = nil
                if self.exact[topic]?.isEmpty == true { self.exact[topic] = nil }
            } else {
                self.wildcards[selector]?[key] = nil
                if self.wildcards[selector]?.isEmpty == true { self.wildcards[selector] = nil }
            }
        }
    }

    /// Hot path: hands `event` to every subscriber on this loop that selects one of its topics.
    func deliver0(_ event: BrokerEvent) {
        self.eventLoop.assertInEventLoop()
        if event.topics.count == 1, event.topics[0] == .broadcast {
            for subscriber in self.all.values { subscriber.deliver(event) }
            return
        }
        for topic in event.topics {
            if let subscribers = self.exact[topic] {
                for subscriber in subscribers.values { subscriber.deliver(event) }
            }
        }
        for (selector, subscribers) in self.wildcards
        where event.topics.contains(where: { selector.matches($0) }) {
            for subscriber in subscribers.values { subscriber.deliver(event) }
        }
    }

    func deliverDirect0(_ event: BrokerEvent, to clientIDs: [ClientID]) {
        self.eventLoop.assertInEventLoop()
        for id in clientIDs { self.all[id]?.deliver(event) }
    }

    private func heartbeat0() {
        for subscriber in self.all.values { subscriber.heartbeat() }
    }
}
