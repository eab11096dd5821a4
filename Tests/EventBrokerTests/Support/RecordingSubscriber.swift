import EventBroker

/// A subscriber that records what the bus hands it, deduplicating like the real handlers: it keeps only events newer
/// than the last one it kept, so its `events` read as the stream a client would see.
final class RecordingSubscriber: Subscriber {
    let clientID: ClientID
    /// Events kept, in the order written.
    private(set) var events: [BrokerEvent] = []
    /// Every `deliver` call, duplicates included.
    private(set) var deliveries = 0
    private(set) var heartbeats = 0
    /// `flush` calls; the shard flushes once per batch that wrote to this subscriber.
    private(set) var flushes = 0
    private var lastID = EventID.zero
    private var hasUnflushedWrites = false

    init(_ name: String) {
        self.clientID = ClientID(rawValue: name)
    }

    var ids: [EventID] { self.events.map(\.id) }

    func deliver(_ event: BrokerEvent) -> Delivery {
        self.deliveries += 1
        guard self.write(event) else { return .skipped }
        defer { self.hasUnflushedWrites = true }
        return self.hasUnflushedWrites ? .written : .firstUnflushedWrite
    }

    func flush() {
        self.flushes += 1
        self.hasUnflushedWrites = false
    }

    /// Writes a subscription's replay first, as a handler does before returning to its loop.
    func replay(_ start: SubscriptionStart) {
        for event in start.replay { _ = self.write(event) }
    }

    func heartbeat() {
        self.heartbeats += 1
    }

    @discardableResult
    private func write(_ event: BrokerEvent) -> Bool {
        guard event.id > self.lastID else { return false }
        self.lastID = event.id
        self.events.append(event)
        return true
    }
}
