import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The two threads that join a broker to a cluster log: one appends, one reads.
///
/// ```
/// publishes ─► [pending] ─► appender: append(batch) ──► appended(batch, ids) ─► answered once read back
///                                      └► head = max id ──┐
/// log signals (appended through n) ──► head = n ──────────┴► reader: records(cursor, head] ─► ingest ─► shards
///                                           every second, and after an interruption: head = lastID()
/// ```
/// The appender commits whatever arrived while its last transaction ran (group commit, as ``StoreWriter``), and
/// also writes the node's client changes for the cluster's presence. The reader reads every record after the
/// broker's cursor up to the newest id it knows of, and also refreshes the other nodes' members and applies
/// retention. It polls the log's newest id once a second, so a missed signal delays events by a second at most.
final class ClusterLink: Sendable {
    /// A publish waiting for its append.
    struct Publish: Sendable {
        let append: ClusterAppend
        let promise: EventLoopPromise<PublishResult>?
    }

    /// What the broker gives the link to call back on its threads.
    struct Callbacks: Sendable {
        /// The batch was appended: one outcome per publish.
        let appended: @Sendable ([Publish], [ClusterAppendOutcome]) -> Void
        /// The batch could not be appended: nothing of it exists.
        let failed: @Sendable ([Publish], StoreError) -> Void
        /// The newest id the broker has read (its cursor).
        let cursor: @Sendable () -> EventID
        /// Ids through this one exist in the log.
        let headAdvanced: @Sendable (EventID) -> Void
        /// Records read after the cursor, and the id they cover the log through (records may have been removed by
        /// retention in between).
        let ingest: @Sendable ([ClusterRecord], EventID) -> Void
        /// The clients of the other nodes, now.
        let remoteMembers: @Sendable ([ClusterMember]) -> Void
    }

    private struct Shared {
        var pending: [Publish] = []
        var joined: [ClientID: ClusterMember] = [:]
        var left: Set<ClientID> = []
        var head: EventID
        var needsPoll = true
        var membersChanged = true
        var retention: StoreWriter.Retention?
        var isStopping = false
        var threadsStopped = 0
    }

    /// The most publishes one transaction takes.
    static let maxBatch = 4096
    /// The most records one read takes.
    static let readLimit = 1024
    private static let hasWork = 1
    private static let idle = 0

    private let log: any ClusterLog
    private let logger: Logger
    private let shared: NIOLockedValueBox<Shared>
    private let appenderSignal = ConditionLock(value: ClusterLink.idle)
    private let readerSignal = ConditionLock(value: ClusterLink.idle)
    private let threads = NIOThreadPool(numberOfThreads: 2)
    private let stopped = ConditionLock(value: 0)

    init(log: any ClusterLog, head: EventID, logger: Logger) {
        self.log = log
        self.logger = logger
        self.shared = NIOLockedValueBox(Shared(head: head))
    }

    func start(_ callbacks: Callbacks) {
        self.threads.start()
        self.threads.submit { _ in self.runAppender(callbacks) }
        self.threads.submit { _ in self.runReader(callbacks) }
        self.log.listen { [weak self] signal in self?.received(signal, callbacks) }
    }

    /// Queues a publish for the next append. Called under the broker's lock.
    func enqueue(_ publish: Publish) {
        self.shared.withLockedValue { $0.pending.append(publish) }
        Self.wake(self.appenderSignal)
    }

    /// A client connected here, or changed its selectors. Called under the broker's lock, so in order.
    func memberJoined(_ member: ClusterMember) {
        self.shared.withLockedValue {
            $0.left.remove(member.clientID)
            $0.joined[member.clientID] = member
        }
        Self.wake(self.appenderSignal)
    }

    /// A client connected here went away. Called under the broker's lock.
    func memberLeft(_ id: ClientID) {
        self.shared.withLockedValue {
            $0.joined[id] = nil
            $0.left.insert(id)
        }
        Self.wake(self.appenderSignal)
    }

    /// Queues retention; a newer one merges with one not yet applied (horizons only grow).
    func schedule(_ retention: StoreWriter.Retention) {
        self.shared.withLockedValue { $0.retention = $0.retention?.merged(with: retention) ?? retention }
        Self.wake(self.readerSignal)
    }

    /// Appends what is pending, stops both threads and closes the log. Idempotent.
    func stop() {
        let alreadyStopping = self.shared.withLockedValue { shared -> Bool in
            defer { shared.isStopping = true }
            return shared.isStopping
        }
        guard !alreadyStopping else { return }
        Self.wake(self.appenderSignal)
        Self.wake(self.readerSignal)
        self.stopped.lock(whenValue: 2)
        self.stopped.unlock()
        try? self.threads.syncShutdownGracefully()
        self.log.close()
    }

    private static func wake(_ signal: ConditionLock<Int>) {
        signal.lock()
        signal.unlock(withValue: Self.hasWork)
    }

    /// Waits for work, or `seconds` at most.
    private static func wait(_ signal: ConditionLock<Int>, seconds: Double) {
        if signal.lock(whenValue: Self.hasWork, timeoutSeconds: seconds) { signal.unlock(withValue: Self.idle) }
    }

    private func threadStopped() {
        let count = self.shared.withLockedValue { shared -> Int in
            shared.threadsStopped += 1
            return shared.threadsStopped
        }
        self.stopped.lock()
        self.stopped.unlock(withValue: count)
    }

    private func received(_ signal: ClusterSignal, _ callbacks: Callbacks) {
        switch signal {
        case .appended(let through):
            let advanced = self.shared.withLockedValue { shared -> Bool in
                guard through > shared.head else { return false }
                shared.head = through
                return true
            }
            guard advanced else { return }
            callbacks.headAdvanced(through)
        case .membersChanged:
            self.shared.withLockedValue { $0.membersChanged = true }
        case .interrupted:
            self.logger.warning("Cluster signals interrupted: reading the log once a second until they resume")
            return
        case .listening:
            self.shared.withLockedValue { $0.needsPoll = true }
        }
        Self.wake(self.readerSignal)
    }

    // MARK: Appending

    private enum AppenderWork {
        case append([Publish])
        case members(joined: [ClusterMember], left: [ClientID])
    }

    private func runAppender(_ callbacks: Callbacks) {
        var retryMembers = false
        while true {
            Self.wait(self.appenderSignal, seconds: retryMembers ? 1 : 3600)
            retryMembers = false
            while let work = self.takeAppenderWork(includingMembers: !retryMembers) {
                switch work {
                case .append(let batch):
                    self.append(batch, callbacks)
                case .members(let joined, let left):
                    do {
                        try self.log.updateMembers(joined: joined, left: left)
                    } catch {
                        self.requeue(joined: joined, left: left)
                        retryMembers = true
                    }
                }
            }
            if self.shared.withLockedValue({ $0.isStopping && $0.pending.isEmpty }) { break }
        }
        self.threadStopped()
    }

    private func takeAppenderWork(includingMembers: Bool) -> AppenderWork? {
        self.shared.withLockedValue { shared -> AppenderWork? in
            if !shared.pending.isEmpty {
                let count = min(shared.pending.count, Self.maxBatch)
                let batch = Array(shared.pending.prefix(count))
                shared.pending.removeFirst(count)
                return .append(batch)
            }
            guard includingMembers, !shared.isStopping, !shared.joined.isEmpty || !shared.left.isEmpty else {
                return nil
            }
            defer {
                shared.joined = [:]
                shared.left = []
            }
            return .members(joined: Array(shared.joined.values), left: Array(shared.left))
        }
    }

    /// Puts back member changes that could not be written, unless newer ones replaced them meanwhile.
    private func requeue(joined: [ClusterMember], left: [ClientID]) {
        self.shared.withLockedValue { shared in
            for member in joined where shared.joined[member.clientID] == nil && !shared.left.contains(member.clientID) {
                shared.joined[member.clientID] = member
            }
            for id in left where shared.joined[id] == nil { shared.left.insert(id) }
        }
    }

    private func append(_ batch: [Publish], _ callbacks: Callbacks) {
        let outcomes: [ClusterAppendOutcome]
        do {
            outcomes = try self.log.append(batch.map(\.append))
        } catch {
            self.logger.error(
                "Cluster log append failed: publishes refused",
                metadata: ["publishes": "\(batch.count)", "code": "\(error.code)", "error": "\(error.message)"])
            return callbacks.failed(batch, error)
        }
        callbacks.appended(batch, outcomes)
        var newest = EventID.zero
        for case .appended(let id) in outcomes { newest = max(newest, id) }
        if newest > .zero { self.received(.appended(through: newest), callbacks) }
    }

    // MARK: Reading

    private func runReader(_ callbacks: Callbacks) {
        var nextPoll = NIODeadline.now()
        var nextMembers = NIODeadline.now()
        var failing = false
        while true {
            Self.wait(self.readerSignal, seconds: 1)
            if self.shared.withLockedValue({ $0.isStopping }) { break }
            do {
                try self.read(callbacks, nextPoll: &nextPoll, nextMembers: &nextMembers)
                if failing {
                    failing = false
                    self.logger.notice("Cluster log reachable again: reading resumed")
                }
            } catch {
                self.shared.withLockedValue {
                    $0.needsPoll = true
                    $0.membersChanged = true
                }
                if !failing {
                    failing = true
                    self.logger.error(
                        "Cluster log unreachable: retrying every second",
                        metadata: ["code": "\(error.code)", "error": "\(error.message)"])
                }
            }
        }
        self.threadStopped()
    }

    private func read(
        _ callbacks: Callbacks, nextPoll: inout NIODeadline, nextMembers: inout NIODeadline
    ) throws(StoreError) {
        let now = NIODeadline.now()
        let (pollNow, membersNow) = self.shared.withLockedValue { shared -> (Bool, Bool) in
            defer {
                shared.needsPoll = false
                shared.membersChanged = false
            }
            return (shared.needsPoll || now >= nextPoll, shared.membersChanged || now >= nextMembers)
        }
        if membersNow {
            nextMembers = now + .seconds(2)
            callbacks.remoteMembers(try self.log.remoteMembers())
        }
        if pollNow {
            nextPoll = now + .seconds(1)
            self.received(.appended(through: try self.log.lastID()), callbacks)
            // That woke this thread again; the extra pass finds nothing to do.
        }
        let head = self.shared.withLockedValue { $0.head }
        var cursor = callbacks.cursor()
        while cursor < head {
            let records = try self.log.records(after: cursor, through: head, limit: Self.readLimit)
            let through = records.count < Self.readLimit ? head : records[records.count - 1].id
            callbacks.ingest(records, through)
            cursor = through
        }
        let retention = self.shared.withLockedValue { shared -> StoreWriter.Retention? in
            defer { shared.retention = nil }
            return shared.retention
        }
        if let retention {
            let applied: Bool
            do {
                applied = try self.log.applyRetention(
                    topicHorizons: retention.topicHorizons, globalHorizon: retention.globalHorizon,
                    nowMilliseconds: retention.nowMilliseconds)
            } catch {
                self.schedule(retention)
                throw error
            }
            // Another node is applying retention now: try again in a second (unless a newer one came meanwhile).
            if !applied { self.shared.withLockedValue { if $0.retention == nil { $0.retention = retention } } }
        }
    }
}
