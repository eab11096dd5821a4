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
    struct State {
        var ids: EventIDGenerator
        var history: EventHistory
        var registry: SubscriptionRegistry
        var idempotency: IdempotencyCache
        /// The newest event handed to the shards (and so to history); with a store, ids issued above it are still
        /// being committed. Subscriptions start here.
        var lastPublished: EventID
        /// The first id this history can account for: before it, a resuming client has missed events.
        var recordFloor: EventID
        /// Keys of publishes being committed, with the promises of retries that came meanwhile.
        var committingKeys: [String: [EventLoopPromise<PublishResult>]] = [:]
        /// Retention horizons last handed to the store.
        var storedHorizons: [TopicName: EventID] = [:]
        var storedGlobalHorizon = EventID.zero
        var isShuttingDown = false
        var sweepTask: RepeatedTask?
        /// In a cluster: the newest id known to exist in the log (it may not be read yet).
        var clusterHead = EventID.zero
        /// In a cluster: the clients of the other nodes, for presence, direct messages and subscriber counts.
        var remote = SubscriptionRegistry(shardCount: 1)
        /// In a cluster: publishes appended to the log and waiting to be read back, in id order.
        var awaiting = AwaitingPublishes()
    }

    public let configuration: BusConfiguration
    public let shards: [SubscriberShard]
    public let bootTimeMilliseconds: UInt64
    let clock: BrokerClock
    let logger: Logger
    let allocator = ByteBufferAllocator()
    let state: NIOLockedValueBox<State>
    private let shardsByLoop: [ObjectIdentifier: Int]
    /// WebSocket subscribers connected now. Read without the lock, to decide whether a publish encodes its WebSocket
    /// frame up front; a WebSocket that connects meanwhile gets the frame encoded on demand.
    let webSocketClients = Atomic<Int>(0)
    let metrics: BusMetrics
    /// Commits publishes to the durable store before they are delivered; nil with the in-memory history only.
    private let writer: StoreWriter?
    /// Appends publishes to the cluster's log and reads back what every node appended; nil for a single node.
    let cluster: ClusterLink?

    /// - Parameters:
    ///   - eventLoops: the loops subscribers live on; one shard each.
    public convenience init(
        eventLoops: [any EventLoop],
        configuration: BusConfiguration = BusConfiguration(),
        clock: BrokerClock = .system,
        metrics: BusMetrics = BusMetrics(),
        logger: Logger = Logger(label: "EventBroker")
    ) {
        self.init(
            eventLoops: eventLoops, configuration: configuration, clock: clock, metrics: metrics, logger: logger,
            store: nil, cluster: nil, stored: StoredState())
    }

    /// A broker whose history is kept in `store` too: it starts with what the store holds (history, ids, retention
    /// horizons, idempotency keys), and answers each publish once the store has committed it.
    ///
    /// - Throws: `StoreError` when the store cannot be read.
    public convenience init(
        eventLoops: [any EventLoop],
        configuration: BusConfiguration = BusConfiguration(),
        clock: BrokerClock = .system,
        metrics: BusMetrics = BusMetrics(),
        logger: Logger = Logger(label: "EventBroker"),
        store: any EventStore
    ) throws(StoreError) {
        let stored = try store.load()
        self.init(
            eventLoops: eventLoops, configuration: configuration, clock: clock, metrics: metrics, logger: logger,
            store: store, cluster: nil, stored: stored)
        logger.notice(
            "Durable history loaded",
            metadata: [
                "events": "\(stored.events.count)", "last.id": "\(stored.lastID?.description ?? "-")",
                "idempotency.keys": "\(stored.idempotencyKeys.count)",
            ])
    }

    /// One node of a cluster: its history starts with what `log` retains, its ids come from the log, and it
    /// delivers what every node of the cluster appends (see ``ClusterLog``). Publishes are answered once read back.
    ///
    /// - Throws: `StoreError` when the log cannot be read.
    public convenience init(
        eventLoops: [any EventLoop],
        configuration: BusConfiguration = BusConfiguration(),
        clock: BrokerClock = .system,
        metrics: BusMetrics = BusMetrics(),
        logger: Logger = Logger(label: "EventBroker"),
        cluster log: any ClusterLog
    ) throws(StoreError) {
        let stored = try log.load()
        self.init(
            eventLoops: eventLoops, configuration: configuration, clock: clock, metrics: metrics, logger: logger,
            store: nil, cluster: log, stored: stored)
        logger.notice(
            "Cluster log loaded",
            metadata: [
                "node": "\(log.nodeID)", "events": "\(stored.events.count)",
                "last.id": "\(stored.lastID?.description ?? "-")",
            ])
    }

    private init(
        eventLoops: [any EventLoop],
        configuration: BusConfiguration,
        clock: BrokerClock,
        metrics: BusMetrics,
        logger: Logger,
        store: (any EventStore)?,
        cluster log: (any ClusterLog)?,
        stored: StoredState
    ) {
        precondition(!eventLoops.isEmpty, "a broker needs at least one event loop")
        self.configuration = configuration
        self.metrics = metrics
        self.clock = clock
        self.logger = logger
        self.shards = eventLoops.enumerated().map {
            SubscriberShard(eventLoop: $1, index: $0, batchWindow: configuration.batchWindow, metrics: metrics)
        }
        var byLoop: [ObjectIdentifier: Int] = [:]
        for shard in self.shards { byLoop[ObjectIdentifier(shard.eventLoop)] = shard.index }
        self.shardsByLoop = byLoop
        let now = clock.nowMicroseconds
        self.bootTimeMilliseconds = now / 1000
        let ids = EventIDGenerator(bootTimeMicroseconds: now, lastStoredID: stored.lastID)
        var state = State(
            ids: ids,
            history: EventHistory(limits: configuration.history),
            registry: SubscriptionRegistry(shardCount: eventLoops.count),
            idempotency: IdempotencyCache(
                window: configuration.idempotencyWindow, capacity: configuration.idempotencyCapacity),
            lastPublished: stored.lastID ?? EventID(rawValue: ids.floor.rawValue - 1),
            recordFloor: stored.firstID ?? ids.floor)
        Self.restore(stored, into: &state, nowMilliseconds: now / 1000, allocator: ByteBufferAllocator())
        if log != nil {
            // Ids are the log's: nothing before its first id is missing, and the cursor is its newest id.
            let last = stored.lastID ?? .zero
            state.lastPublished = last
            state.clusterHead = last
            state.recordFloor = stored.firstID ?? EventID(rawValue: last.rawValue + 1)
        }
        self.state = NIOLockedValueBox(state)
        self.writer = store.map { StoreWriter(store: $0, logger: logger) }
        self.cluster = log.map { ClusterLink(log: $0, head: stored.lastID ?? .zero, logger: logger) }
        self.writer?.start(
            committed: { [weak self] batch in self?.committed(batch) },
            failed: { [weak self] batch, error in self?.failed(batch, error) })
        self.cluster?.start(self.clusterCallbacks())
        for shard in self.shards { shard.startHeartbeats(every: configuration.heartbeatInterval) }
        self.startSweeping()
    }

    /// Rebuilds the in-memory history, its horizons and the idempotency keys from what a store gave back. Retention
    /// applies as events go in, so smaller limits than the last run's drop the oldest.
    private static func restore(
        _ stored: StoredState, into state: inout State, nowMilliseconds: UInt64, allocator: ByteBufferAllocator
    ) {
        for event in stored.events {
            state.history.append(
                BrokerEvent(
                    id: event.id, topics: event.topics, eventType: event.eventType, data: event.data,
                    dataIsJSON: event.dataIsJSON, timeMilliseconds: event.timeMilliseconds,
                    retryMilliseconds: event.retryMilliseconds, isPrivate: event.isPrivate, allocator: allocator),
                nowMilliseconds: nowMilliseconds)
        }
        state.history.restoreHorizons(stored.topicHorizons, global: stored.globalHorizon)
        state.storedHorizons = stored.topicHorizons
        state.storedGlobalHorizon = stored.globalHorizon
        for key in stored.idempotencyKeys where key.expiresAtMilliseconds > nowMilliseconds {
            state.idempotency.restore(key.result, for: key.key, expiresAtMilliseconds: key.expiresAtMilliseconds)
        }
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

    /// Stops timers and refuses new publishes; with a store, waits for the publishes being committed and closes it.
    /// Idempotent.
    public func shutdown() {
        let task = self.state.withLockedValue { state -> RepeatedTask? in
            state.isShuttingDown = true
            defer { state.sweepTask = nil }
            return state.sweepTask
        }
        task?.cancel()
        for shard in self.shards { shard.stopHeartbeats() }
        self.writer?.stop()
        self.cluster?.stop()
    }

    private func startSweeping() {
        let loop = self.shards[0].eventLoop
        let task = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [weak self] _ in
            self?.sweep()
        }
        self.state.withLockedValue { $0.sweepTask = task }
    }

    /// Applies age-based retention and forgets expired idempotency keys; with a store, hands it what retention
    /// dropped since the last sweep, to forget in the background.
    public func sweep() {
        let now = self.clock.nowMilliseconds
        let retention = self.state.withLockedValue { state -> StoreWriter.Retention? in
            state.history.evictExpired(nowMilliseconds: now)
            state.idempotency.expire(nowMilliseconds: now)
            guard self.writer != nil || self.cluster != nil else { return nil }
            let (horizons, global) = state.history.horizons()
            var changed: [TopicName: EventID] = [:]
            for (topic, horizon) in horizons where horizon > max(state.storedHorizons[topic] ?? .zero, global) {
                changed[topic] = horizon
                state.storedHorizons[topic] = horizon
            }
            guard !changed.isEmpty || global > state.storedGlobalHorizon else { return nil }
            state.storedGlobalHorizon = global
            state.storedHorizons = state.storedHorizons.filter { $0.value > global }
            return StoreWriter.Retention(topicHorizons: changed, globalHorizon: global, nowMilliseconds: now)
        }
        if let retention {
            self.writer?.schedule(retention)
            self.cluster?.schedule(retention)
        }
    }

    // MARK: Publishing

    /// Whether publishes wait for a durable store's commit (use ``publish(_:promise:)`` then).
    public var isDurable: Bool { self.writer != nil || self.cluster != nil }

    /// Publishes one event to one or more topics, and answers at once: for a broker without a store (see
    /// ``isDurable``). With a store, use ``publish(_:promise:)``.
    ///
    /// - Throws: `BrokerError` for reserved topics, too many topics, an invalid event type or empty data.
    public func publish(_ request: PublishRequest) throws(BrokerError) -> PublishResult {
        precondition(!self.isDurable, "a durable broker answers publishes once committed: use publish(_:promise:)")
        return try self.append(try self.validatedPublish(request), direct: nil, promise: nil)!
    }

    /// Publishes one event to one or more topics; `promise` succeeds once the event is in history and handed to
    /// the shards, which with a store is after its commit, or fails with a `BrokerError` (`store_unavailable` when
    /// the store could not commit it: nothing was delivered then, and a retry may succeed).
    public func publish(_ request: PublishRequest, promise: EventLoopPromise<PublishResult>) {
        do {
            if let result = try self.append(try self.validatedPublish(request), direct: nil, promise: promise) {
                promise.succeed(result)
            }
        } catch {
            promise.fail(error)
        }
    }

    private func validatedPublish(_ request: PublishRequest) throws(BrokerError) -> PublishRequest {
        var request = request
        if request.topics.count > 1 {
            var topics: [TopicName] = []
            for topic in request.topics where !topics.contains(topic) { topics.append(topic) }
            request.topics = topics
        }
        try self.validate(request)
        for topic in request.topics where topic.isReserved {
            throw BrokerError(
                .reservedTopic,
                "Topic '\(topic)' is reserved for the broker: topics beginning with '$' cannot be published to.")
        }
        return request
    }

    /// Publishes to every connected subscriber, whatever its selectors; stored under `$broadcast`. For a broker
    /// without a store; see ``broadcast(data:dataIsJSON:eventType:idempotencyKey:promise:)``.
    public func broadcast(
        data: String, dataIsJSON: Bool = false, eventType: String? = nil, idempotencyKey: String? = nil
    ) throws(BrokerError) -> PublishResult {
        precondition(!self.isDurable, "a durable broker answers broadcasts once committed: pass a promise")
        let request = PublishRequest(
            topics: [.broadcast], data: data, dataIsJSON: dataIsJSON, eventType: eventType,
            idempotencyKey: idempotencyKey)
        try self.validate(request)
        return try self.append(request, direct: nil, promise: nil)!
    }

    /// A broadcast whose `promise` succeeds once it is committed and handed to the shards, as for
    /// ``publish(_:promise:)``.
    public func broadcast(
        data: String, dataIsJSON: Bool = false, eventType: String? = nil, idempotencyKey: String? = nil,
        promise: EventLoopPromise<PublishResult>
    ) {
        let request = PublishRequest(
            topics: [.broadcast], data: data, dataIsJSON: dataIsJSON, eventType: eventType,
            idempotencyKey: idempotencyKey)
        do {
            try self.validate(request)
            if let result = try self.append(request, direct: nil, promise: promise) { promise.succeed(result) }
        } catch {
            promise.fail(error)
        }
    }

    /// Sends an event to one client (or every connection of one user). Not stored in history. For a broker
    /// without a store; see ``sendDirect(to:data:dataIsJSON:eventType:idempotencyKey:promise:)``.
    ///
    /// - Throws: `BrokerError.Code.clientNotFound` when no connected client matches.
    public func sendDirect(
        to recipient: DirectRecipient, data: String, dataIsJSON: Bool = false, eventType: String? = nil,
        idempotencyKey: String? = nil
    ) throws(BrokerError) -> PublishResult {
        precondition(!self.isDurable, "a durable broker orders direct messages behind commits: pass a promise")
        let request = PublishRequest(
            topics: [], data: data, dataIsJSON: dataIsJSON, eventType: eventType, idempotencyKey: idempotencyKey)
        try self.validate(request, allowNoTopic: true)
        return try self.append(request, direct: recipient, promise: nil)!
    }

    /// A direct message whose `promise` succeeds once it is handed to its recipients' shards: with a store, behind
    /// the publishes being committed, so that streams still receive ids in order.
    public func sendDirect(
        to recipient: DirectRecipient, data: String, dataIsJSON: Bool = false, eventType: String? = nil,
        idempotencyKey: String? = nil, promise: EventLoopPromise<PublishResult>
    ) {
        let request = PublishRequest(
            topics: [], data: data, dataIsJSON: dataIsJSON, eventType: eventType, idempotencyKey: idempotencyKey)
        do {
            try self.validate(request, allowNoTopic: true)
            if let result = try self.append(request, direct: recipient, promise: promise) { promise.succeed(result) }
        } catch {
            promise.fail(error)
        }
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

    /// Assigns the id and delivers the event now, or, with a store, queues it for the next commit (direct messages
    /// too, though they are not stored, so that every shard still receives events in id order).
    ///
    /// - Returns: The answer when the publish is answered now; nil when `promise` is completed after the commit.
    private func append(
        _ request: PublishRequest, direct recipient: DirectRecipient?, promise: EventLoopPromise<PublishResult>?
    ) throws(BrokerError) -> PublishResult? {
        let now = self.clock.nowMilliseconds
        let topics = request.topics
        let writer = promise == nil ? nil : self.writer
        // In a cluster, events are encoded when they are read back from the log, with the log's id.
        let cluster = promise == nil ? nil : self.cluster
        // Everything but the id is encoded before the lock is taken; under it, only the id line is filled in.
        // Taken (not copied) under the lock, so the frame's storage stays uniquely owned and is finished in place.
        var frame =
            cluster == nil
            ? SSEFrame.prepare(
                event: request.eventType, data: request.data, retry: request.retryMilliseconds,
                allocator: self.allocator) : nil
        var webSocketFrame =
            cluster == nil && self.webSocketClients.load(ordering: .relaxed) > 0
            ? WebSocketEventFrame.prepare(
                topics: topics, eventType: request.eventType, data: request.data, dataIsJSON: request.dataIsJSON,
                allocator: self.allocator) : nil
        let outcome = self.state.withLockedValue { state -> Result<PublishResult?, BrokerError> in
            if state.isShuttingDown {
                return .failure(
                    BrokerError(.shuttingDown, "The broker is shutting down; publish to another node or retry shortly.")
                )
            }
            if let key = request.idempotencyKey {
                if var earlier = state.idempotency.result(for: key) {
                    earlier.isReplay = true
                    return .success(earlier)
                }
                if let promise, state.committingKeys[key] != nil {
                    // The first publish with this key is being committed: answer this one with its outcome.
                    state.committingKeys[key]!.append(promise)
                    return .success(nil)
                }
            }
            var targets: [(ClientID, SubscriptionRegistry.Client)] = []
            if let recipient {
                switch recipient {
                case .client(let id):
                    if let client = state.registry.clients[id], client.transport != .longPoll {
                        targets = [(id, client)]
                    } else if cluster != nil, let client = state.remote.clients[id] {
                        targets = [(id, client)]
                    }
                case .user(let user):
                    targets = state.registry.clients(forUser: user)
                    if cluster != nil { targets += state.remote.clients(forUser: user) }
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
            if let cluster {
                let append = ClusterAppend(
                    kind: recipient != nil ? .direct : request.isEphemeral ? .ephemeral : .event, topics: topics,
                    eventType: request.eventType, data: request.data, dataIsJSON: request.dataIsJSON,
                    timeMilliseconds: now, retryMilliseconds: request.retryMilliseconds, isPrivate: request.isPrivate,
                    recipients: targets.map(\.0), idempotencyKey: request.idempotencyKey,
                    keyExpiresAtMilliseconds: now + state.idempotency.windowMilliseconds,
                    subscribers: recipient != nil
                        ? targets.count
                        : state.registry.subscriberCount(for: topics) + state.remote.subscriberCount(for: topics))
                if let key = request.idempotencyKey { state.committingKeys[key] = [] }
                cluster.enqueue(ClusterLink.Publish(append: append, promise: promise))
                return .success(nil)
            }
            let event = BrokerEvent(
                id: state.ids.make(), topics: topics, eventType: request.eventType, data: request.data,
                dataIsJSON: request.dataIsJSON, timeMilliseconds: now, retryMilliseconds: request.retryMilliseconds,
                isPrivate: request.isPrivate, frame: frame.take()!, webSocketFrame: webSocketFrame.take())
            var directTargets: [Int: [ClientID]]?
            if !targets.isEmpty {
                var byShard: [Int: [ClientID]] = [:]
                for (id, client) in targets { byShard[client.shardIndex, default: []].append(id) }
                directTargets = byShard
            }
            let subscribers = directTargets == nil ? state.registry.subscriberCount(for: topics) : targets.count
            let result = PublishResult(id: event.id, topics: topics, subscribers: subscribers)
            let publish = StoreWriter.Publish(
                event: event, result: result, directTargets: directTargets, isEphemeral: request.isEphemeral,
                idempotencyKey: request.idempotencyKey,
                keyExpiresAtMilliseconds: now + state.idempotency.windowMilliseconds, promise: promise)
            if let writer {
                if let key = request.idempotencyKey { state.committingKeys[key] = [] }
                writer.enqueue(publish)
                return .success(nil)
            }
            _ = self.deliver0(publish, state: &state, nowMilliseconds: now, subscribers: subscribers)
            return .success(result)
        }
        let published = try outcome.get()
        if let published, !published.isReplay { self.metrics.publishes.increment() }
        return published
    }

    /// Puts a publish in history and hands it to the shards (its direct recipients' shards for a direct message).
    /// Under the lock; returns the promises of retries that waited for it. `subscribers` is the count of its topics'
    /// subscribers when the caller took it under this same lock; nil has it counted again.
    func deliver0(
        _ publish: StoreWriter.Publish, state: inout State, nowMilliseconds: UInt64, subscribers: Int? = nil
    ) -> [EventLoopPromise<PublishResult>] {
        let event = publish.event
        state.lastPublished = event.id
        if let directTargets = publish.directTargets {
            for (index, ids) in directTargets { self.shards[index].enqueue(.direct(event, ids)) }
        } else {
            if !publish.isEphemeral { state.history.append(event, nowMilliseconds: nowMilliseconds) }
            if (subscribers ?? state.registry.subscriberCount(for: event.topics)) > 0 {
                for shard in self.shards where state.registry.clientsPerShard[shard.index] > 0 {
                    shard.enqueue(.event(event))
                }
            }
        }
        guard let key = publish.idempotencyKey else { return [] }
        state.idempotency.insert(publish.result, for: key, nowMilliseconds: nowMilliseconds)
        return state.committingKeys.removeValue(forKey: key) ?? []
    }

    /// The store committed `batch`: deliver it in id order, then answer its publishes (and retries that waited).
    private func committed(_ batch: [StoreWriter.Publish]) {
        let now = self.clock.nowMilliseconds
        let waiters = self.state.withLockedValue { state in
            batch.map { self.deliver0($0, state: &state, nowMilliseconds: now) }
        }
        for (publish, retries) in zip(batch, waiters) {
            self.metrics.publishes.increment()
            publish.promise?.succeed(publish.result)
            var replay = publish.result
            replay.isReplay = true
            for retry in retries { retry.succeed(replay) }
        }
    }

    /// The store could not commit `batch`: none of its events exists. Direct messages and ephemeral events, which are
    /// not stored, are delivered all the same; the other publishes (and retries that waited) fail with `store_unavailable`.
    private func failed(_ batch: [StoreWriter.Publish], _ error: StoreError) {
        let now = self.clock.nowMilliseconds
        let refusal = BrokerError(
            .storeUnavailable, "The event could not be stored (\(error.code)); nothing was delivered. Retry shortly.")
        let outcomes = self.state.withLockedValue { state in
            batch.map { publish -> (delivered: Bool, retries: [EventLoopPromise<PublishResult>]) in
                if publish.directTargets != nil || publish.isEphemeral {
                    return (true, self.deliver0(publish, state: &state, nowMilliseconds: now))
                }
                guard let key = publish.idempotencyKey else { return (false, []) }
                return (false, state.committingKeys.removeValue(forKey: key) ?? [])
            }
        }
        for (publish, outcome) in zip(batch, outcomes) {
            if outcome.delivered {
                publish.promise?.succeed(publish.result)
            } else {
                publish.promise?.fail(refusal)
            }
            for retry in outcome.retries {
                if outcome.delivered {
                    var replay = publish.result
                    replay.isReplay = true
                    retry.succeed(replay)
                } else {
                    retry.fail(refusal)
                }
            }
        }
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
    ///   - name: The display name presence shows (see ``Presence``); nil for the token's `sub`, if any.
    public func subscribe0(
        _ subscriber: any Subscriber,
        selectors: [TopicSelector],
        lastEventID: String?,
        transport: Transport,
        principal: Principal = .open,
        name: String? = nil,
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
            // In a cluster, a client may resume from an id this node has not read yet: live events through it are
            // then not delivered again.
            let handoff = max(state.lastPublished, Self.unreadResumeID(lastEventID, state: state) ?? .zero)
            var replay: [BrokerEvent] = []
            var gap: HistoryGap?
            if let lastEventID {
                (replay, gap) = self.resumePlan(
                    state: state, selectors: selectors, lastEventID: lastEventID, includeBroadcast: true,
                    limit: .max, where: principal.mayRead)
            }
            let client = SubscriptionRegistry.Client(
                shardIndex: shard.index, selectors: selectors, transport: transport, userID: principal.userID,
                name: name ?? principal.userID, sinceMilliseconds: self.clock.nowMilliseconds)
            state.registry.add(subscriber.clientID, client)
            self.clusterMemberJoined(subscriber.clientID, client)
            shard.add0(subscriber, selectors: selectors)
            self.announce0(.join, subscriber.clientID, client, topics: client.presenceTopics, state: &state)
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
            guard let client = state.registry.remove(subscriber.clientID) else { return }
            if client.transport != .longPoll { self.cluster?.memberLeft(subscriber.clientID) }
            if client.transport == .webSocket { self.webSocketClients.subtract(1, ordering: .relaxed) }
            self.announce0(.leave, subscriber.clientID, client, topics: client.presenceTopics, state: &state)
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
            var changed = SubscriptionRegistry.Client(
                shardIndex: client.shardIndex, selectors: new, transport: client.transport, userID: client.userID,
                name: client.name, sinceMilliseconds: client.sinceMilliseconds)
            changed.joinOrder = client.joinOrder
            state.registry.add(subscriber.clientID, changed)
            self.clusterMemberJoined(subscriber.clientID, changed)
            let pending = shard.takePending()
            let handoff = state.lastPublished
            let (wasIn, isIn) = (client.presenceTopics, changed.presenceTopics)
            self.announce0(
                .leave, subscriber.clientID, client, topics: wasIn.filter { !isIn.contains($0) }, state: &state)
            self.announce0(
                .join, subscriber.clientID, changed, topics: isIn.filter { !wasIn.contains($0) }, state: &state)
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

    /// Publishes `client`'s joining or leaving `topics` to their `$presence` topics: ephemeral events, made only for
    /// topics someone watches the presence of. Under the lock, right after the registry changed, so each event's
    /// member count and id agree with the order of changes.
    private func announce0(
        _ change: Presence.Change, _ id: ClientID, _ client: SubscriptionRegistry.Client, topics: [TopicName],
        state: inout State
    ) {
        guard !state.isShuttingDown else { return }
        let now = self.clock.nowMilliseconds
        for topic in topics {
            // In a cluster, a watcher on another node may not be known here yet: every change is announced.
            guard let presenceTopic = Presence.topic(for: topic),
                self.cluster != nil || state.registry.subscriberCount(for: presenceTopic) > 0
            else { continue }
            let data = Presence.data(
                change, topic: topic, clientID: id, name: client.name, transport: client.transport,
                timeMilliseconds: now,
                members: state.registry.memberCount(of: topic) + state.remote.memberCount(of: topic))
            if let cluster = self.cluster {
                let append = ClusterAppend(
                    kind: .ephemeral, topics: [presenceTopic], eventType: change.rawValue, data: data, dataIsJSON: true,
                    timeMilliseconds: now, retryMilliseconds: nil, isPrivate: false)
                cluster.enqueue(ClusterLink.Publish(append: append, promise: nil))
                continue
            }
            let event = BrokerEvent(
                id: state.ids.make(), topics: [presenceTopic], eventType: change.rawValue, data: data,
                dataIsJSON: true, timeMilliseconds: now, retryMilliseconds: nil, isPrivate: false,
                allocator: self.allocator)
            let publish = StoreWriter.Publish(
                event: event, result: PublishResult(id: event.id, topics: event.topics, subscribers: 0),
                directTargets: nil, isEphemeral: true, idempotencyKey: nil, keyExpiresAtMilliseconds: 0, promise: nil)
            if let writer = self.writer {
                writer.enqueue(publish)
            } else {
                _ = self.deliver0(publish, state: &state, nowMilliseconds: now)
            }
        }
    }

    /// Events after `lastEventID` and whether the client missed any. Called under the lock.
    private func resumePlan(
        state: State, selectors: [TopicSelector], lastEventID: String, includeBroadcast: Bool, limit: Int,
        where isIncluded: (BrokerEvent) -> Bool
    ) -> ([BrokerEvent], HistoryGap?) {
        let lastIssued = state.lastPublished
        let horizon = state.history.horizon(selectors: selectors, includeBroadcast: includeBroadcast)
        var after = EventID.zero
        var missed: Bool
        if let id = EventID(parsing: lastEventID), id <= max(lastIssued, state.clusterHead) {
            after = id
            // Before this run's first id, events of an earlier run (not kept in memory) may have been missed.
            missed = id < horizon.dropped || (id != .zero && id < state.recordFloor)
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
        // In a cluster, the other nodes' subscribers too (empty otherwise).
        names.formUnion(state.remote.exactlySubscribedTopics)
        names.formUnion(state.remote.multiSelectorExactTopics())
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
            topic: topic,
            subscribers: state.registry.subscriberCount(for: topic) + state.remote.subscriberCount(for: topic),
            lastEventID: state.history.lastEventID(of: topic), historySize: state.history.count(of: topic),
            oldestEventID: state.history.oldestEventID(of: topic),
            memberCount: state.registry.memberCount(of: topic) + state.remote.memberCount(of: topic))
    }

    /// Who is on `topic` now: at most `limit` members, earliest first.
    public func presence(of topic: TopicName, limit: Int) -> TopicPresence {
        self.state.withLockedValue { state in
            var members = state.registry.members(of: topic, limit: limit)
            if self.cluster != nil {
                // Every node's members, earliest first; within a millisecond, this node's first.
                members += state.remote.members(of: topic, limit: limit)
                members.sort { $0.sinceMilliseconds < $1.sinceMilliseconds }
                members = Array(members.prefix(limit))
            }
            return TopicPresence(
                members: members,
                count: state.registry.memberCount(of: topic) + state.remote.memberCount(of: topic),
                asOf: self.cluster != nil ? state.lastPublished : state.ids.lastIssued ?? state.lastPublished)
        }
    }

    public func stats() -> BrokerStats {
        self.state.withLockedValue { state in
            BrokerStats(
                connections: state.registry.countsByTransport, subscriptions: state.registry.selectorCount,
                topics: Self.knownTopics(in: state).count,
                historyEvents: state.history.liveEntries, historyBytes: state.history.totalBytes,
                lastEventID: state.lastPublished >= state.recordFloor ? state.lastPublished : nil)
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
