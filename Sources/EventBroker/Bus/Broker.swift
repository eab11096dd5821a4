import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import Synchronization

/// The topic bus: assigns ids, keeps history, and fans each event out to every event loop's shard.
///
/// ```
/// publish (any thread) ──lock── id, encode once, history, count ──► each loop's inbox ──► SubscriberShard
///                                                   (one execute per loop per burst) └─► subscribers on that loop
/// ```
/// The lock covers id assignment and the hand-off to the loops, so every loop receives events in id order; it is
/// never held while writing to a socket. Subscribing happens on the subscriber's own loop, under the same lock, so
/// the replay snapshot and live delivery meet exactly at `SubscriptionStart.handoffID`: no gap, no duplicate.
public final class Broker: Sendable {
    private struct State {
        var ids: EventIDGenerator
        var history: EventHistory
        var registry: SubscriptionRegistry
        var idempotency: IdempotencyCache
        var isShuttingDown = false
        var sweepTask: RepeatedTask?
    }

    public let configuration: BusConfiguration
    public let shards: [SubscriberShard]
    public let bootTimeMilliseconds: UInt64
    private let clock: BrokerClock
    private let logger: Logger
    private let allocator = ByteBufferAllocator()
    private let state: NIOLockedValueBox<State>
    private let shardsByLoop: [ObjectIdentifier: Int]
    /// WebSocket subscribers connected now. Read without the lock, to decide whether a publish encodes its WebSocket
    /// frame up front; a WebSocket that connects meanwhile gets the frame encoded on demand.
    private let webSocketClients = Atomic<Int>(0)
    private let metrics: BusMetrics

    /// - Parameters:
    ///   - eventLoops: the loops subscribers live on; one shard each.
    public init(
        eventLoops: [any EventLoop],
        configuration: BusConfiguration = BusConfiguration(),
        clock: BrokerClock = .system,
        metrics: BusMetrics = BusMetrics(),
        logger: Logger = Logger(label: "EventBroker")
    ) {
        precondition(!eventLoops.isEmpty, "a broker needs at least one event loop")
        self.configuration = configuration
        self.metrics = metrics
        self.clock = clock
        self.logger = logger
        self.shards = eventLoops.enumerated().map { SubscriberShard(eventLoop: $1, index: $0, metrics: metrics) }
        var byLoop: [ObjectIdentifier: Int] = [:]
        for shard in self.shards { byLoop[ObjectIdentifier(shard.eventLoop)] = shard.index }
        self.shardsByLoop = byLoop
        let now = clock.nowMicroseconds
        self.bootTimeMilliseconds = now / 1000
        self.state = NIOLockedValueBox(
            State(
                ids: EventIDGenerator(bootTimeMicroseconds: now),
                history: EventHistory(limits: configuration.history),
                registry: SubscriptionRegistry(shardCount: eventLoops.count),
                idempotency: IdempotencyCache(
                    window: configuration.idempotencyWindow, capacity: configuration.idempotencyCapacity)
            ))
        for shard in self.shards { shard.startHeartbeats(every: configuration.heartbeatInterval) }
        self.startSweeping()
    }

    /// A broker over every loop of `group`.
    public convenience init(
        group: any EventLoopGroup,
        configuration: BusConfiguration = BusConfiguration(),
        clock: BrokerClock = .system,
        metrics: BusMetrics = BusMetrics(),
        logger: Logger = Logger(label: "EventBroker")
    ) {
        self.init(
            eventLoops: Array(group.makeIterator()), configuration: configuration, clock: clock, metrics: metrics,
            logger: logger)
    }

    /// The shard of the loop `eventLoop`; nil for a loop the broker was not built with.
    public func shard(for eventLoop: any EventLoop) -> SubscriberShard? {
        self.shardsByLoop[ObjectIdentifier(eventLoop)].map { self.shards[$0] }
    }

    public var isShuttingDown: Bool { self.state.withLockedValue { $0.isShuttingDown } }

    /// Stops timers and refuses new publishes. Idempotent.
    public func shutdown() {
        let task = self.state.withLockedValue { state -> RepeatedTask? in
            state.isShuttingDown = true
            defer { state.sweepTask = nil }
            return state.sweepTask
        }
        task?.cancel()
        for shard in self.shards { shard.stopHeartbeats() }
    }

    private func startSweeping() {
        let loop = self.shards[0].eventLoop
        let task = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [weak self] _ in
            self?.sweep()
        }
        self.state.withLockedValue { $0.sweepTask = task }
    }

    /// Applies age-based retention and forgets expired idempotency keys.
    public func sweep() {
        let now = self.clock.nowMilliseconds
        self.state.withLockedValue { state in
            state.history.evictExpired(nowMilliseconds: now)
            state.idempotency.expire(nowMilliseconds: now)
        }
    }

    // MARK: Publishing

    /// Publishes one event to one or more topics.
    ///
    /// - Throws: `BrokerError` for reserved topics, too many topics, an invalid event type or empty data.
    public func publish(_ request: PublishRequest) throws(BrokerError) -> PublishResult {
        var request = request
        var topics: [TopicName] = []
        for topic in request.topics where !topics.contains(topic) { topics.append(topic) }
        request.topics = topics
        try self.validate(request)
        for topic in request.topics where topic.isReserved {
            throw BrokerError(
                .reservedTopic,
                "Topic '\(topic)' is reserved for the broker: topics beginning with '$' cannot be published to.")
        }
        return try self.append(request, direct: nil)
    }

    /// Publishes to every connected subscriber, whatever its selectors; stored under `$broadcast`.
    public func broadcast(
        data: String, dataIsJSON: Bool = false, eventType: String? = nil, idempotencyKey: String? = nil
    ) throws(BrokerError) -> PublishResult {
        let request = PublishRequest(
            topics: [.broadcast], data: data, dataIsJSON: dataIsJSON, eventType: eventType,
            idempotencyKey: idempotencyKey)
        try self.validate(request)
        return try self.append(request, direct: nil)
    }

    /// Sends an event to one client (or every connection of one user). Not stored in history.
    ///
    /// - Throws: `BrokerError.Code.clientNotFound` when no connected client matches.
    public func sendDirect(
        to recipient: DirectRecipient, data: String, dataIsJSON: Bool = false, eventType: String? = nil,
        idempotencyKey: String? = nil
    ) throws(BrokerError) -> PublishResult {
        let request = PublishRequest(
            topics: [], data: data, dataIsJSON: dataIsJSON, eventType: eventType, idempotencyKey: idempotencyKey)
        try self.validate(request, allowNoTopic: true)
        return try self.append(request, direct: recipient)
    }

    private func validate(_ request: PublishRequest, allowNoTopic: Bool = false) throws(BrokerError) {
        if request.topics.isEmpty && !allowNoTopic {
            throw BrokerError(.invalidTopic, "Give a topic: 'topic' or 'topics'.")
        }
        if request.topics.count > self.configuration.maxTopicsPerPublish {
            throw BrokerError(
                .tooManyTopics,
                "An event may go to at most \(self.configuration.maxTopicsPerPublish) topics; this one names \(request.topics.count)."
            )
        }
        if request.data.isEmpty {
            throw BrokerError(.emptyData, "'data' is empty: an event must carry data.")
        }
        if let type = request.eventType {
            let bytes = type.utf8
            if bytes.isEmpty || bytes.count > self.configuration.maxEventTypeLength
                || bytes.contains(where: { $0 < 0x20 || $0 == 0x7F })
            {
                throw BrokerError(
                    .invalidEvent,
                    "'event' must be 1 to \(self.configuration.maxEventTypeLength) bytes with no line breaks or control characters."
                )
            }
        }
    }

    private func append(_ request: PublishRequest, direct recipient: DirectRecipient?) throws(BrokerError)
        -> PublishResult
    {
        let now = self.clock.nowMilliseconds
        let topics = request.topics
        // Everything but the id is encoded before the lock is taken; under it, only the id line is filled in.
        // Taken (not copied) under the lock, so the frame's storage stays uniquely owned and is finished in place.
        var frame = Optional(
            SSEFrame.prepare(
                event: request.eventType, data: request.data, retry: request.retryMilliseconds,
                allocator: self.allocator))
        var webSocketFrame =
            self.webSocketClients.load(ordering: .relaxed) > 0
            ? WebSocketEventFrame.prepare(
                topics: topics, eventType: request.eventType, data: request.data, dataIsJSON: request.dataIsJSON,
                allocator: self.allocator) : nil
        let result = self.state.withLockedValue { state -> Result<PublishResult, BrokerError> in
            if state.isShuttingDown {
                return .failure(
                    BrokerError(.shuttingDown, "The broker is shutting down; publish to another node or retry shortly.")
                )
            }
            if let key = request.idempotencyKey, var earlier = state.idempotency.result(for: key) {
                earlier.isReplay = true
                return .success(earlier)
            }
            var targets: [(ClientID, SubscriptionRegistry.Client)] = []
            if let recipient {
                switch recipient {
                case .client(let id):
                    if let client = state.registry.clients[id], client.transport != .longPoll {
                        targets = [(id, client)]
                    }
                case .user(let user):
                    targets = state.registry.clients(forUser: user)
                }
                guard !targets.isEmpty else {
                    switch recipient {
                    case .client(let id):
                        return .failure(BrokerError(.clientNotFound, "No connected client has the id '\(id)'."))
                    case .user(let user):
                        return .failure(BrokerError(.clientNotFound, "No connected client belongs to user '\(user)'."))
                    }
                }
            }
            let event = BrokerEvent(
                id: state.ids.make(), topics: topics, eventType: request.eventType, data: request.data,
                dataIsJSON: request.dataIsJSON, timeMilliseconds: now, retryMilliseconds: request.retryMilliseconds,
                isPrivate: request.isPrivate, frame: frame.take()!, webSocketFrame: webSocketFrame.take())
            let subscribers: Int
            if recipient == nil {
                state.history.append(event, nowMilliseconds: now)
                subscribers = state.registry.subscriberCount(for: topics)
                if subscribers > 0 {
                    for shard in self.shards where state.registry.clientsPerShard[shard.index] > 0 {
                        shard.enqueue(.event(event))
                    }
                }
            } else {
                subscribers = targets.count
                var byShard: [Int: [ClientID]] = [:]
                for (id, client) in targets { byShard[client.shardIndex, default: []].append(id) }
                for (index, ids) in byShard { self.shards[index].enqueue(.direct(event, ids)) }
            }
            let result = PublishResult(id: event.id, topics: topics, subscribers: subscribers)
            if let key = request.idempotencyKey {
                state.idempotency.insert(result, for: key, nowMilliseconds: now)
            }
            return .success(result)
        }
        let published = try result.get()
        if !published.isReplay { self.metrics.publishes.increment() }
        return published
    }

    // MARK: Subscribing

    /// Registers `subscriber` on its own loop and returns what to replay before live events.
    ///
    /// Must run on `eventLoop`. Write the replay (after the gap notice, if any) before returning to the loop: live
    /// deliveries for ids above `handoffID` are already queued behind this call.
    ///
    /// - Parameters:
    ///   - selectors: What the subscriber selects; a WebSocket may start with none (it still gets broadcasts and
    ///     direct messages) and change them with ``changeSelectors0(_:from:to:replaying:after:readableBy:on:)``.
    ///   - lastEventID: the id the client resumes from, as sent; nil for live events only. `0` asks for all
    ///     retained history.
    ///   - principal: Whom the subscriber acts for: the replay holds only the private events it may read (the
    ///     subscriber filters live deliveries itself), and direct messages to its user id (a token's `sub`) reach it.
    public func subscribe0(
        _ subscriber: any Subscriber,
        selectors: [TopicSelector],
        lastEventID: String?,
        transport: Transport,
        principal: Principal = .open,
        on eventLoop: any EventLoop
    ) throws(BrokerError) -> SubscriptionStart {
        eventLoop.assertInEventLoop()
        guard let shard = self.shard(for: eventLoop) else {
            preconditionFailure("event loop \(eventLoop) does not belong to this broker")
        }
        try self.validate(selectors, allowNone: transport == .webSocket)
        let start = self.state.withLockedValue { state -> Result<SubscriptionStart, BrokerError> in
            if state.isShuttingDown {
                return .failure(BrokerError(.shuttingDown, "The broker is shutting down; reconnect shortly."))
            }
            if transport == .webSocket { self.webSocketClients.add(1, ordering: .relaxed) }
            let handoff = state.ids.lastIssued ?? EventID(rawValue: state.ids.floor.rawValue - 1)
            var replay: [BrokerEvent] = []
            var gap: HistoryGap?
            if let lastEventID {
                (replay, gap) = self.resumePlan(
                    state: state, selectors: selectors, lastEventID: lastEventID, includeBroadcast: true,
                    limit: .max, where: principal.mayRead)
            }
            state.registry.add(
                subscriber.clientID,
                .init(
                    shardIndex: shard.index, selectors: selectors, transport: transport, userID: principal.userID))
            shard.add0(subscriber, selectors: selectors)
            return .success(SubscriptionStart(replay: replay, gap: gap, handoffID: handoff))
        }
        let subscription = try start.get()
        self.logger.debug(
            "Subscriber attached",
            metadata: [
                "client.id": "\(subscriber.clientID)", "topics": "\(selectors.map(\.value))",
                "transport": "\(transport.rawValue)", "replay": "\(subscription.replay.count)",
            ])
        return subscription
    }

    /// Removes a subscriber registered with `subscribe0`. Must run on its loop. Idempotent.
    public func unsubscribe0(_ subscriber: any Subscriber, selectors: [TopicSelector], on eventLoop: any EventLoop) {
        eventLoop.assertInEventLoop()
        guard let shard = self.shard(for: eventLoop) else { return }
        self.state.withLockedValue { state in
            if state.registry.remove(subscriber.clientID)?.transport == .webSocket {
                self.webSocketClients.subtract(1, ordering: .relaxed)
            }
        }
        shard.remove0(subscriber, selectors: selectors)
        self.logger.debug("Subscriber detached", metadata: ["client.id": "\(subscriber.clientID)"])
    }

    /// Changes what a subscriber registered with `subscribe0` selects, and returns what to replay for the selectors
    /// it adds. Must run on its loop.
    ///
    /// Before the change takes effect, every delivery already queued for this loop (ids up to `handoffID`) is
    /// delivered, under the old selectors, during this call: the subscriber can merge those with the replay in id
    /// order. Live deliveries after the call have ids above `handoffID` and follow the new selectors.
    /// - Parameters:
    ///   - old: The selectors it was registered with.
    ///   - new: All its selectors from now on (possibly none).
    ///   - added: The selectors to replay history for, after `lastEventID`; nothing is replayed when
    ///     `lastEventID` is nil.
    ///   - reader: Whom the subscriber acts for: the replay holds only the private events it may read.
    /// - Throws: `BrokerError` for too many selectors or when shutting down.
    public func changeSelectors0(
        _ subscriber: any Subscriber, from old: [TopicSelector], to new: [TopicSelector],
        replaying added: [TopicSelector], after lastEventID: String?, readableBy reader: Principal = .open,
        on eventLoop: any EventLoop
    ) throws(BrokerError) -> SubscriptionStart {
        eventLoop.assertInEventLoop()
        guard let shard = self.shard(for: eventLoop) else {
            preconditionFailure("event loop \(eventLoop) does not belong to this broker")
        }
        try self.validate(new, allowNone: true)
        let result = self.state.withLockedValue {
            state -> Result<(SubscriptionStart, [SubscriberShard.Item]), BrokerError> in
            if state.isShuttingDown {
                return .failure(BrokerError(.shuttingDown, "The broker is shutting down; reconnect shortly."))
            }
            guard let client = state.registry.remove(subscriber.clientID) else {
                preconditionFailure("client \(subscriber.clientID) changes selectors without being subscribed")
            }
            state.registry.add(
                subscriber.clientID,
                .init(
                    shardIndex: client.shardIndex, selectors: new, transport: client.transport,
                    userID: client.userID))
            let pending = shard.takePending()
            let handoff = state.ids.lastIssued ?? EventID(rawValue: state.ids.floor.rawValue - 1)
            var replay: [BrokerEvent] = []
            var gap: HistoryGap?
            if let lastEventID, !added.isEmpty {
                (replay, gap) = self.resumePlan(
                    state: state, selectors: added, lastEventID: lastEventID, includeBroadcast: false, limit: .max,
                    where: reader.mayRead)
            }
            return .success((SubscriptionStart(replay: replay, gap: gap, handoffID: handoff), pending))
        }
        let (start, pending) = try result.get()
        // Still on the loop, so nothing is delivered between these steps.
        shard.deliver0(pending)
        shard.remove0(subscriber, selectors: old)
        shard.add0(subscriber, selectors: new)
        return start
    }

    private func validate(_ selectors: [TopicSelector], allowNone: Bool = false) throws(BrokerError) {
        if selectors.isEmpty && !allowNone {
            throw BrokerError(.invalidSelector, "Give at least one topic selector: ?topic=NAME (repeatable).")
        }
        if selectors.count > self.configuration.maxSelectorsPerSubscription {
            throw BrokerError(
                .tooManyTopics,
                "A subscription may name at most \(self.configuration.maxSelectorsPerSubscription) topic selectors; this one names \(selectors.count)."
            )
        }
    }

    /// Events after `lastEventID` and whether the client missed any. Called under the lock.
    private func resumePlan(
        state: State, selectors: [TopicSelector], lastEventID: String, includeBroadcast: Bool, limit: Int,
        where isIncluded: (BrokerEvent) -> Bool
    ) -> ([BrokerEvent], HistoryGap?) {
        let lastIssued = state.ids.lastIssued ?? EventID(rawValue: state.ids.floor.rawValue - 1)
        let horizon = state.history.horizon(selectors: selectors, includeBroadcast: includeBroadcast)
        var after = EventID.zero
        var missed: Bool
        if let id = EventID(parsing: lastEventID), id <= lastIssued {
            after = id
            // Before this run's first id, events of an earlier run (not kept in memory) may have been missed.
            missed = id < horizon.dropped || (id != .zero && id < state.ids.floor)
        } else {
            missed = true  // unknown: from another broker, or not an id at all; replay everything retained
        }
        let events = state.history.events(
            after: after, selectors: selectors, includeBroadcast: includeBroadcast, limit: limit, where: isIncluded)
        if missed {
            return (events, HistoryGap(lastEventID: lastEventID, oldestAvailable: horizon.oldest))
        }
        return (events, nil)
    }

    // MARK: Reading

    /// Retained events after `after` (nil: from the oldest retained) on the selected topics that `reader` may read
    /// (private events only with a token that covers them), at most `limit` of them.
    public func history(
        selectors: [TopicSelector], after: String?, limit: Int, readableBy reader: Principal = .open
    ) throws(BrokerError) -> HistoryPage {
        try self.validate(selectors)
        return self.state.withLockedValue { state in
            let (events, gap) = self.resumePlan(
                state: state, selectors: selectors, lastEventID: after ?? "0", includeBroadcast: false,
                limit: limit, where: reader.mayRead)
            let polledFrom = after.flatMap { EventID(parsing: $0) } ?? .zero
            return HistoryPage(events: events, gap: gap, nextAfter: events.last?.id ?? polledFrom)
        }
    }

    /// Every topic that retains events or has a subscriber naming it exactly, sorted by name.
    public func topics() -> [TopicInfo] {
        self.state.withLockedValue { state in
            Self.knownTopics(in: state).sorted().map { Self.info(for: $0, in: state) }
        }
    }

    /// Topics that retain events or that some subscriber names exactly.
    private static func knownTopics(in state: State) -> Set<TopicName> {
        var names = Set(state.history.retainedTopics)
        names.formUnion(state.registry.exactlySubscribedTopics)
        names.formUnion(state.registry.multiSelectorExactTopics())
        return names
    }

    /// One topic, or nil when the broker knows nothing of it.
    public func topic(_ topic: TopicName) -> TopicInfo? {
        self.state.withLockedValue { state in
            let info = Self.info(for: topic, in: state)
            return info.historySize == 0 && info.subscribers == 0 ? nil : info
        }
    }

    private static func info(for topic: TopicName, in state: State) -> TopicInfo {
        TopicInfo(
            topic: topic, subscribers: state.registry.subscriberCount(for: topic),
            lastEventID: state.history.lastEventID(of: topic), historySize: state.history.count(of: topic),
            oldestEventID: state.history.oldestEventID(of: topic))
    }

    public func stats() -> BrokerStats {
        self.state.withLockedValue { state in
            BrokerStats(
                connections: state.registry.countsByTransport, subscriptions: state.registry.selectorCount,
                topics: Self.knownTopics(in: state).count,
                historyEvents: state.history.liveEntries, historyBytes: state.history.totalBytes,
                lastEventID: state.ids.lastIssued)
        }
    }
}

extension Broker: Service {
    /// Runs until graceful shutdown, then stops the bus's timers. Put it before the server in a `ServiceGroup` so
    /// it stops after the server has drained its connections.
    public func run() async throws {
        try? await gracefulShutdown()
        self.shutdown()
    }
}
