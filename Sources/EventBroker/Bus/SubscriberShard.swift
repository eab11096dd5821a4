import NIOConcurrencyHelpers
import NIOCore

/// The subscribers connected on one event loop, grouped by what they select. Fan-out on a loop happens here.
///
/// Confined to `eventLoop`: every method ending in `0` must run there. The bus never touches the subscribers from
/// the publishing thread: it appends to the shard's inbox (a short lock, in id order) and schedules one delivery
/// when the inbox was empty. That task delivers everything pending, then flushes each touched connection once, so
/// a burst of events costs one task per loop and one syscall per connection.
///
/// The delivery runs at once (an `execute`) unless the loop is busy with fan-out: the last delivery flushed at least
/// ``busyConnections`` connections, and began less than the batch window ago. Then it waits for the window to end.
/// Under a steady stream of events to many connections a loop thus delivers at most once per window, and the events
/// of a window reach each connection in one write. An event after a quiet spell, or after a delivery to a few
/// connections (a request and its reply going back and forth), goes out without waiting.
/// `@unchecked Sendable` only so the `Broker` can hold it and schedule work on its loop.
public final class SubscriberShard: @unchecked Sendable {
    enum Item {
        case event(BrokerEvent)
        case direct(BrokerEvent, [ClientID])
    }

    private struct Inbox {
        var items: [Item] = []
        /// A delivery is scheduled or running; items that come meanwhile go with the next one.
        var isScheduled = false
        /// When the last delivery began (uptime nanoseconds), if it was busy: it flushed at least ``busyConnections``
        /// connections. Nil after a smaller one, before the first, and without a window.
        var lastBusyDelivery: UInt64?
    }

    public let eventLoop: any EventLoop
    let index: Int
    /// The least time between two busy deliveries on this loop, in nanoseconds; 0 delivers every burst at once.
    private let batchWindow: UInt64
    /// A delivery that flushes this many connections or more is busy: merging what follows saves that many syscalls
    /// per event. Below it, the window would add latency and save little.
    static let busyConnections = 32
    private let inbox = NIOLockedValueBox(Inbox())
    private var exact: [TopicName: [ObjectIdentifier: any Subscriber]] = [:]
    private var wildcards: [TopicSelector: [ObjectIdentifier: any Subscriber]] = [:]
    private var all: [ClientID: any Subscriber] = [:]
    private var heartbeatTask: RepeatedTask?
    /// The batch being delivered (swapped with the inbox's array, so neither reallocates in the steady state).
    private var batch: [Item] = []
    /// Subscribers with unflushed writes in this batch.
    private var dirty: [any Subscriber] = []

    private let metrics: BusMetrics
    /// Deliveries written in the batch being delivered, added to the metrics once at its end.
    private var batchDeliveries = 0

    init(eventLoop: any EventLoop, index: Int, batchWindow: Duration = .zero, metrics: BusMetrics = BusMetrics()) {
        self.eventLoop = eventLoop
        self.index = index
        self.batchWindow = UInt64(max(0, TimeAmount(batchWindow).nanoseconds))
        self.metrics = metrics
    }

    /// Subscribers currently on this loop (for tests and diagnostics).
    public var count0: Int {
        self.eventLoop.assertInEventLoop()
        return self.all.count
    }

    func startHeartbeats(every interval: Duration) {
        let amount = TimeAmount(interval)
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

    /// Queues `item` for this loop. The bus calls it under its lock, so items queue in id order.
    func enqueue(_ item: Item) {
        let wait = self.inbox.withLockedValue { inbox -> UInt64? in
            inbox.items.append(item)
            guard !inbox.isScheduled else { return nil }
            inbox.isScheduled = true
            return self.wait(after: inbox.lastBusyDelivery)
        }
        self.schedule(after: wait)
    }

    /// How long the next delivery waits, in nanoseconds: until the window that began with the last busy delivery
    /// ends, or not at all.
    private func wait(after lastBusyDelivery: UInt64?) -> UInt64 {
        guard let lastBusyDelivery else { return 0 }
        let sinceLast = NIODeadline.now().uptimeNanoseconds &- lastBusyDelivery
        return sinceLast < self.batchWindow ? self.batchWindow - sinceLast : 0
    }

    /// Schedules ``deliverPending0()`` after `wait` nanoseconds (at once for 0); nothing for nil.
    private func schedule(after wait: UInt64?) {
        switch wait {
        case nil: break
        case 0: self.eventLoop.execute { self.deliverPending0() }
        case let nanoseconds?:
            self.eventLoop.scheduleTask(in: .nanoseconds(Int64(nanoseconds))) { self.deliverPending0() }
        }
    }

    /// Takes the queued items without delivering them. The bus calls it under its lock, so no item with an id up to
    /// the last one issued can be queued after it; it then hands them to ``deliver0(_:)``.
    func takePending() -> [Item] {
        self.inbox.withLockedValue { inbox in
            defer { inbox.items.removeAll(keepingCapacity: true) }
            return inbox.items
        }
    }

    /// Hot path: delivers every queued item to the subscribers on this loop, then flushes each touched one once.
    func deliverPending0() {
        self.eventLoop.assertInEventLoop()
        // The inbox stays scheduled while this delivery runs: what comes meanwhile is scheduled at its end.
        self.inbox.withLockedValue { inbox in swap(&inbox.items, &self.batch) }
        let start = self.batchWindow > 0 ? NIODeadline.now().uptimeNanoseconds : 0
        let isBusy = self.deliverBatch0() >= Self.busyConnections && self.batchWindow > 0
        let wait = self.inbox.withLockedValue { inbox -> UInt64? in
            inbox.lastBusyDelivery = isBusy ? start : nil
            guard !inbox.items.isEmpty else {
                inbox.isScheduled = false
                return nil
            }
            return self.wait(after: inbox.lastBusyDelivery)
        }
        self.schedule(after: wait)
    }

    /// Delivers `items` (taken with ``takePending()``) now, before the queued task would have.
    func deliver0(_ items: [Item]) {
        self.eventLoop.assertInEventLoop()
        guard !items.isEmpty else { return }
        precondition(self.batch.isEmpty, "a batch is being delivered")
        self.batch = items
        self.deliverBatch0()
    }

    /// Delivers `batch` and returns how many connections it flushed.
    @discardableResult
    private func deliverBatch0() -> Int {
        for item in self.batch {
            switch item {
            case .event(let event): self.deliver0(event)
            case .direct(let event, let clientIDs):
                for id in clientIDs {
                    if let subscriber = self.all[id] { self.deliver0(event, to: subscriber) }
                }
            }
        }
        self.batch.removeAll(keepingCapacity: true)
        for subscriber in self.dirty { subscriber.flush() }
        let flushed = self.dirty.count
        self.dirty.removeAll(keepingCapacity: true)
        if self.batchDeliveries > 0 {
            self.metrics.deliveries.increment(by: self.batchDeliveries)
            self.batchDeliveries = 0
        }
        return flushed
    }

    /// Hot path: one event to one subscriber.
    @inline(__always)
    private func deliver0(_ event: BrokerEvent, to subscriber: any Subscriber) {
        switch subscriber.deliver(event) {
        case .skipped:
            break
        case .written:
            self.batchDeliveries += 1
        case .firstUnflushedWrite:
            self.batchDeliveries += 1
            self.dirty.append(subscriber)
        }
    }

    private func deliver0(_ event: BrokerEvent) {
        let deliveriesBefore = self.batchDeliveries
        defer {
            if self.batchDeliveries > deliveriesBefore {
                let now = NIODeadline.now().uptimeNanoseconds
                self.metrics.publishToWrite.recordNanoseconds(Int64(now &- event.publishedUptimeNanoseconds))
            }
        }
        if event.topics.count == 1, event.topics[0] == .broadcast {
            for subscriber in self.all.values { self.deliver0(event, to: subscriber) }
            return
        }
        for topic in event.topics {
            if let subscribers = self.exact[topic] {
                for subscriber in subscribers.values { self.deliver0(event, to: subscriber) }
            }
        }
        for (selector, subscribers) in self.wildcards
        where event.topics.contains(where: { selector.matches($0) }) {
            for subscriber in subscribers.values { self.deliver0(event, to: subscriber) }
        }
    }

    private func heartbeat0() {
        for subscriber in self.all.values { subscriber.heartbeat() }
    }
}
