import NIOCore

/// Publishes appended to the cluster's log whose answers wait until this node has read them back, in id order.
struct AwaitingPublishes {
    struct Entry {
        let result: PublishResult
        let promise: EventLoopPromise<PublishResult>?
        /// Retries with the same idempotency key that came while it was being appended.
        let retries: [EventLoopPromise<PublishResult>]
    }

    private var entries: [Entry] = []
    private var head = 0

    var isEmpty: Bool { self.head == self.entries.count }

    /// Adds an entry; ids arrive ascending (one appender, in batch order).
    mutating func append(_ entry: Entry) {
        self.entries.append(entry)
    }

    /// Removes and returns the entries whose ids are at or below `cursor`.
    mutating func takeRead(through cursor: EventID) -> ArraySlice<Entry> {
        let start = self.head
        while self.head < self.entries.count, self.entries[self.head].result.id <= cursor { self.head += 1 }
        let taken = self.entries[start..<self.head]
        if self.head == self.entries.count || self.head > 1024 {
            defer {
                self.entries.removeFirst(self.head)
                self.head = 0
            }
            return ArraySlice(Array(taken))
        }
        return taken
    }
}

extension Broker {
    func clusterCallbacks() -> ClusterLink.Callbacks {
        ClusterLink.Callbacks(
            appended: { [weak self] batch, outcomes in self?.clusterAppended(batch, outcomes) },
            failed: { [weak self] batch, error in self?.clusterAppendFailed(batch, error) },
            cursor: { [weak self] in self?.state.withLockedValue { $0.lastPublished } ?? .zero },
            headAdvanced: { [weak self] id in
                self?.state.withLockedValue { $0.clusterHead = max($0.clusterHead, id) }
            },
            ingest: { [weak self] records, through in self?.ingest(records, through: through) },
            remoteMembers: { [weak self] members in self?.replaceRemoteMembers(members) })
    }

    /// The id a client resumes from when this node has not read that far yet but the log has it; nil otherwise.
    static func unreadResumeID(_ lastEventID: String?, state: State) -> EventID? {
        guard let lastEventID, let id = EventID(parsing: lastEventID), id > state.lastPublished,
            id <= state.clusterHead
        else { return nil }
        return id
    }

    /// Tells the cluster a client connected here, or changed what it selects. Long polls are never members.
    func clusterMemberJoined(_ id: ClientID, _ client: SubscriptionRegistry.Client) {
        guard let cluster = self.cluster, client.transport != .longPoll else { return }
        cluster.memberJoined(
            ClusterMember(
                clientID: id, selectors: client.selectors, transport: client.transport, userID: client.userID,
                name: client.name, sinceMilliseconds: client.sinceMilliseconds))
    }

    /// The log appended `batch`: each publish is answered once this node has read its id back (a replay of an
    /// idempotency key at once).
    private func clusterAppended(_ batch: [ClusterLink.Publish], _ outcomes: [ClusterAppendOutcome]) {
        let now = self.clock.nowMilliseconds
        var answers: [(AwaitingPublishes.Entry, isReplay: Bool)] = []
        self.state.withLockedValue { state in
            for (publish, outcome) in zip(batch, outcomes) {
                let append = publish.append
                let result: PublishResult
                var isReplay = false
                switch outcome {
                case .appended(let id):
                    result = PublishResult(id: id, topics: append.topics, subscribers: append.subscribers)
                case .replay(let first):
                    result = first
                    isReplay = true
                }
                var retries: [EventLoopPromise<PublishResult>] = []
                if let key = append.idempotencyKey {
                    state.idempotency.insert(result, for: key, nowMilliseconds: now)
                    retries = state.committingKeys.removeValue(forKey: key) ?? []
                }
                let entry = AwaitingPublishes.Entry(result: result, promise: publish.promise, retries: retries)
                if isReplay || result.id <= state.lastPublished {
                    answers.append((entry, isReplay))
                } else {
                    state.awaiting.append(entry)
                }
            }
        }
        for (entry, isReplay) in answers { self.answer(entry, isReplay: isReplay) }
    }

    private func answer(_ entry: AwaitingPublishes.Entry, isReplay: Bool) {
        var replay = entry.result
        replay.isReplay = true
        if isReplay {
            entry.promise?.succeed(replay)
        } else {
            self.metrics.publishes.increment()
            entry.promise?.succeed(entry.result)
        }
        for retry in entry.retries { retry.succeed(replay) }
    }

    /// The log could not append `batch`: none of it exists, and its publishes (and retries that waited) fail with
    /// `store_unavailable`.
    private func clusterAppendFailed(_ batch: [ClusterLink.Publish], _ error: StoreError) {
        let refusal = BrokerError(
            .storeUnavailable,
            "The event could not be stored in the cluster's log (\(error.code)); nothing was delivered. Retry shortly.")
        let retries = self.state.withLockedValue { state in
            batch.flatMap { publish in
                publish.append.idempotencyKey.flatMap { state.committingKeys.removeValue(forKey: $0) } ?? []
            }
        }
        for publish in batch { publish.promise?.fail(refusal) }
        for retry in retries { retry.fail(refusal) }
    }

    /// Delivers records read from the log after the cursor, in id order, and moves the cursor to `through`; then
    /// answers this node's publishes that were read.
    func ingest(_ records: [ClusterRecord], through: EventID) {
        // Encoded before the lock is taken, once per event, as a single node does at publish.
        let encodeWebSocket = self.webSocketClients.load(ordering: .relaxed) > 0
        let events = records.map { record in
            BrokerEvent(
                id: record.id, topics: record.topics, eventType: record.eventType, data: record.data,
                dataIsJSON: record.dataIsJSON, timeMilliseconds: record.timeMilliseconds,
                retryMilliseconds: record.retryMilliseconds, isPrivate: record.isPrivate,
                frame: SSEFrame.prepare(
                    event: record.eventType, data: record.data, retry: record.retryMilliseconds,
                    allocator: self.allocator),
                webSocketFrame: encodeWebSocket
                    ? WebSocketEventFrame.prepare(
                        topics: record.topics, eventType: record.eventType, data: record.data,
                        dataIsJSON: record.dataIsJSON, allocator: self.allocator) : nil)
        }
        let now = self.clock.nowMilliseconds
        let read = self.state.withLockedValue { state -> ArraySlice<AwaitingPublishes.Entry> in
            for (record, event) in zip(records, events) where record.id > state.lastPublished {
                var targets: [Int: [ClientID]]?
                if record.kind == .direct {
                    var byShard: [Int: [ClientID]] = [:]
                    for id in record.recipients {
                        if let client = state.registry.clients[id] {
                            byShard[client.shardIndex, default: []].append(id)
                        }
                    }
                    targets = byShard
                }
                let publish = StoreWriter.Publish(
                    event: event, result: PublishResult(id: event.id, topics: event.topics, subscribers: 0),
                    directTargets: targets, isEphemeral: record.kind == .ephemeral, idempotencyKey: nil,
                    keyExpiresAtMilliseconds: 0, promise: nil)
                _ = self.deliver0(publish, state: &state, nowMilliseconds: now)
            }
            state.lastPublished = max(state.lastPublished, through)
            state.clusterHead = max(state.clusterHead, through)
            return state.awaiting.takeRead(through: state.lastPublished)
        }
        for entry in read { self.answer(entry, isReplay: false) }
    }

    /// The clients of the other nodes, as the log lists them now.
    private func replaceRemoteMembers(_ members: [ClusterMember]) {
        var remote = SubscriptionRegistry(shardCount: 1)
        for member in members where remote.clients[member.clientID] == nil {
            remote.add(
                member.clientID,
                SubscriptionRegistry.Client(
                    shardIndex: 0, selectors: member.selectors, transport: member.transport, userID: member.userID,
                    name: member.name, sinceMilliseconds: member.sinceMilliseconds))
        }
        self.state.withLockedValue { $0.remote = remote }
    }
}
