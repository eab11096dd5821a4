import NIOCore

/// The in-memory history: a ring of recent events per topic, bounded by count, total bytes and age.
///
/// Not thread-safe: `Broker` owns it under its lock. Events are appended in id order, so each topic's ring is
/// sorted and a global timeline (one entry per event and topic) lets byte and age eviction drop the globally
/// oldest event first. An event published to several topics is stored once and referenced by each ring.
///
/// For gap detection the history knows its *horizon* per topic: the newest id it has dropped there. A client
/// resuming from an id below the horizon has missed events.
struct EventHistory {
    private struct TopicRing {
        var events = CircularBuffer<BrokerEvent>(initialCapacity: 8)
        /// Newest id dropped from this topic (by any bound). A ring created anew starts at the global timeline
        /// horizon, since an earlier ring of the same topic may have been dropped whole.
        var evictedThrough: EventID
        var lastEventID = EventID.zero

        /// Appends `event` and drops the oldest event when the ring holds more than `limit`; returns it.
        mutating func append(_ event: BrokerEvent, limit: Int) -> BrokerEvent? {
            self.events.append(event)
            self.lastEventID = event.id
            guard self.events.count > limit else { return nil }
            let dropped = self.events.removeFirst()
            self.evictedThrough = dropped.id
            return dropped
        }
    }

    private struct TimelineEntry {
        let topic: TopicName
        let event: BrokerEvent
        /// The event's publish time, kept here so the age check at each append reads the timeline's head alone,
        /// not the (long cold) event or its ring.
        let timeMilliseconds: UInt64
    }

    let limits: HistoryLimits
    /// `limits.maxAge` in milliseconds, worked out once rather than at every append.
    private let maxAgeMilliseconds: UInt64?
    private var rings: [TopicName: TopicRing] = [:]
    private var timeline = ChunkedQueue<TimelineEntry>()
    /// Entries of `timeline` whose event is still in its ring; the rest were count-evicted and are skipped.
    private(set) var liveEntries = 0
    /// Newest id dropped in timeline order (bytes or age): every event at or below it is gone on every topic. It is
    /// the horizon of topics that retain nothing (their ring, and what it knew, is gone).
    private(set) var timelineEvictedThrough = EventID.zero
    private(set) var totalBytes = 0

    init(limits: HistoryLimits) {
        self.limits = limits
        self.maxAgeMilliseconds = limits.maxAge?.wholeMilliseconds
    }

    /// Entries in the timeline: one per retained event and topic, and the count-evicted ones not dropped yet.
    var timelineEntries: Int { self.timeline.count }

    /// Topics that currently retain at least one event, and how many.
    var topicCount: Int { self.rings.count }
    var retainedTopics: [TopicName] { Array(self.rings.keys) }

    func lastEventID(of topic: TopicName) -> EventID? {
        guard let ring = self.rings[topic] else { return nil }
        return ring.lastEventID
    }

    func count(of topic: TopicName) -> Int { self.rings[topic]?.events.count ?? 0 }

    func oldestEventID(of topic: TopicName) -> EventID? { self.rings[topic]?.events.first?.id }

    /// The newest id this history has dropped on `topic`.
    func horizon(of topic: TopicName) -> EventID {
        self.rings[topic]?.evictedThrough ?? self.timelineEvictedThrough
    }

    /// Per retaining topic, the newest id dropped there; and the newest dropped everywhere. What a store forgets.
    func horizons() -> (topics: [TopicName: EventID], global: EventID) {
        var topics: [TopicName: EventID] = [:]
        topics.reserveCapacity(self.rings.count)
        for (topic, ring) in self.rings { topics[topic] = ring.evictedThrough }
        return (topics, self.timelineEvictedThrough)
    }

    /// Raises the horizons to those a store recorded, after its events were appended again at start-up: the
    /// events dropped before the restart stay known as dropped.
    mutating func restoreHorizons(_ topics: [TopicName: EventID], global: EventID) {
        self.timelineEvictedThrough = max(self.timelineEvictedThrough, global)
        for (topic, horizon) in topics where self.rings[topic] != nil {
            self.rings[topic]!.evictedThrough = max(self.rings[topic]!.evictedThrough, horizon)
        }
        for topic in self.rings.keys where self.rings[topic]!.evictedThrough < self.timelineEvictedThrough {
            self.rings[topic]!.evictedThrough = self.timelineEvictedThrough
        }
    }

    mutating func append(_ event: BrokerEvent, nowMilliseconds: UInt64) {
        guard self.limits.eventsPerTopic > 0, self.limits.maxBytes > 0 else { return }
        let cost = event.historyCost
        for topic in event.topics {
            // One in-place access to the ring: no lookup per field, and no copy of the ring (which would retain
            // its storage) to read its count. Not `rings[topic, default: …]`: its default is a closure whose context,
            // with the accessor's, costs two allocations per append even when the ring exists.
            let dropped: BrokerEvent?
            if let index = self.rings.index(forKey: topic) {
                dropped = self.rings.values[index].append(event, limit: self.limits.eventsPerTopic)
            } else {
                var ring = TopicRing(evictedThrough: self.timelineEvictedThrough)
                dropped = ring.append(event, limit: self.limits.eventsPerTopic)
                self.rings[topic] = ring
            }
            self.timeline.append(TimelineEntry(topic: topic, event: event, timeMilliseconds: event.timeMilliseconds))
            self.liveEntries += 1
            self.totalBytes += cost
            if let dropped {
                self.liveEntries -= 1
                self.totalBytes -= dropped.historyCost
            }
        }
        while self.totalBytes > self.limits.maxBytes, self.evictOldest() {}
        self.evictExpired(nowMilliseconds: nowMilliseconds)
        self.compactTimelineIfNeeded()
    }

    /// Drops every event older than `limits.maxAge`.
    mutating func evictExpired(nowMilliseconds: UInt64) {
        guard let ageMilliseconds = self.maxAgeMilliseconds, nowMilliseconds > ageMilliseconds else { return }
        let cutoff = nowMilliseconds - ageMilliseconds
        // The timeline is in publish order: when its head (live or count-evicted) is recent enough, so is the rest.
        guard let oldest = self.timeline.readFirst(\.timeMilliseconds), oldest < cutoff else { return }
        while let first = self.firstLiveTimelineEntry(), first.timeMilliseconds < cutoff {
            _ = self.evictOldest()
        }
        self.compactTimelineIfNeeded()
    }

    /// Drops count-evicted entries from the head of the timeline and returns the oldest live one.
    private mutating func firstLiveTimelineEntry() -> TimelineEntry? {
        while let entry = self.timeline.first {
            if let first = self.rings[entry.topic]?.events.first, first === entry.event { return entry }
            self.timeline.popFirst()
        }
        return nil
    }

    /// Removes the oldest live timeline entry. Returns false when the history is empty.
    private mutating func evictOldest() -> Bool {
        while let entry = self.timeline.popFirst() {
            guard let first = self.rings[entry.topic]?.events.first, first === entry.event else {
                continue  // already dropped by the per-topic count bound
            }
            self.rings[entry.topic]!.events.removeFirst()
            self.rings[entry.topic]!.evictedThrough = entry.event.id
            if self.rings[entry.topic]!.events.isEmpty {
                self.rings[entry.topic] = nil
            }
            self.liveEntries -= 1
            self.totalBytes -= entry.event.historyCost
            self.timelineEvictedThrough = max(self.timelineEvictedThrough, entry.event.id)
            return true
        }
        return false
    }

    /// Count-evicted entries stay in the timeline until eviction reaches them; rebuild it when they dominate.
    private mutating func compactTimelineIfNeeded() {
        guard self.timeline.count > 2 * self.liveEntries + 1024 else { return }
        var compacted = ChunkedQueue<TimelineEntry>()
        for entry in self.timeline {
            if let first = self.rings[entry.topic]?.events.first, first.id <= entry.event.id {
                compacted.append(entry)
            }
        }
        self.timeline = compacted
    }

    /// Retained events after `after` on topics the selectors match, in id order, each once.
    func events(
        after: EventID, selectors: [TopicSelector], includeBroadcast: Bool, limit: Int = .max,
        where isIncluded: (BrokerEvent) -> Bool = { _ in true }
    ) -> [BrokerEvent] {
        var collected: [BrokerEvent] = []
        var multiTopic = false
        self.forEachSelectedRing(selectors: selectors, includeBroadcast: includeBroadcast) { _, ring in
            let start = Self.firstIndex(in: ring.events, after: after)
            var index = start
            while index != ring.events.endIndex {
                let event = ring.events[index]
                if isIncluded(event) {
                    if event.topics.count > 1 { multiTopic = true }
                    collected.append(event)
                }
                index = ring.events.index(after: index)
            }
        }
        collected.sort { $0.id < $1.id }
        if multiTopic {
            var unique: [BrokerEvent] = []
            unique.reserveCapacity(collected.count)
            for event in collected where unique.last?.id != event.id { unique.append(event) }
            collected = unique
        }
        if collected.count > limit { collected.removeLast(collected.count - limit) }
        return collected
    }

    /// The newest dropped id and the oldest retained id over the selected topics.
    ///
    /// A topic that retains events knows its own horizon. Selected topics that retain nothing (an exact topic
    /// without a ring, or whatever a wildcard may have matched before) fall back to the global timeline horizon,
    /// which may report a gap that was not one but never hides one.
    func horizon(selectors: [TopicSelector], includeBroadcast: Bool) -> (dropped: EventID, oldest: EventID?) {
        var dropped = EventID.zero
        var oldest: EventID?
        self.forEachSelectedRing(selectors: selectors, includeBroadcast: includeBroadcast) { _, ring in
            dropped = max(dropped, ring.evictedThrough)
            if let first = ring.events.first?.id { oldest = min(oldest ?? first, first) }
        }
        for selector in selectors {
            if let topic = selector.exactTopic, self.rings[topic] != nil { continue }
            dropped = max(dropped, self.timelineEvictedThrough)
        }
        if includeBroadcast, self.rings[.broadcast] == nil {
            dropped = max(dropped, self.timelineEvictedThrough)
        }
        return (dropped, oldest)
    }

    private func forEachSelectedRing(
        selectors: [TopicSelector], includeBroadcast: Bool, _ body: (TopicName, TopicRing) -> Void
    ) {
        var visitedExact: Set<TopicName> = []
        let hasWildcard = selectors.contains(where: \.isWildcard)
        if hasWildcard {
            for (topic, ring) in self.rings
            where selectors.contains(where: { $0.matches(topic) })
                || (includeBroadcast && topic == .broadcast)
            {
                body(topic, ring)
            }
            return
        }
        for selector in selectors {
            guard let topic = selector.exactTopic, visitedExact.insert(topic).inserted else { continue }
            if let ring = self.rings[topic] { body(topic, ring) }
        }
        if includeBroadcast, !visitedExact.contains(.broadcast), let ring = self.rings[.broadcast] {
            body(.broadcast, ring)
        }
    }

    private static func firstIndex(in events: CircularBuffer<BrokerEvent>, after id: EventID)
        -> CircularBuffer<BrokerEvent>.Index
    {
        var low = 0
        var high = events.count
        while low < high {
            let middle = (low + high) / 2
            if events[events.index(events.startIndex, offsetBy: middle)].id <= id {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return events.index(events.startIndex, offsetBy: low)
    }
}
