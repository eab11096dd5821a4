import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The one thread that talks to a durable store: it commits publishes in batches and applies retention between
/// them.
///
/// ```
/// publish ─lock─ id ─► enqueue ─► [pending] ─► commit(batch) ─► committed(batch): history, shards, answers
///                                  (whatever arrived while the last commit ran)   └► failed(batch, error): 503s
/// ```
/// Group commit: while one transaction is being made durable, publishes keep arriving and wait in `pending`; the
/// next transaction takes all of them at once (up to `maxBatch`), so one sync to disk serves many publishes and the
/// rate of durable publishes grows with the load instead of being one per disk sync. Publishes are enqueued under the
/// broker's lock, so batches, and the events in them, are in id order, and so are the callbacks.
final class StoreWriter: Sendable {
    /// A publish waiting for its commit.
    struct Publish: Sendable {
        let event: BrokerEvent
        let result: PublishResult
        /// For a direct message: its recipients by shard. Not stored; it waits only to keep the id order.
        let directTargets: [Int: [ClientID]]?
        /// Live only (a typing indicator, presence): not stored either, and delivered even when a commit fails.
        let isEphemeral: Bool
        let idempotencyKey: String?
        let keyExpiresAtMilliseconds: UInt64
        let promise: EventLoopPromise<PublishResult>?
    }

    /// What retention dropped since the last time, for the store to forget.
    struct Retention: Sendable {
        var topicHorizons: [TopicName: EventID]
        var globalHorizon: EventID
        var nowMilliseconds: UInt64

        /// This retention and a newer one, as one: horizons only grow.
        func merged(with newer: Retention) -> Retention {
            Retention(
                topicHorizons: self.topicHorizons.merging(newer.topicHorizons) { max($0, $1) },
                globalHorizon: max(self.globalHorizon, newer.globalHorizon), nowMilliseconds: newer.nowMilliseconds)
        }
    }

    private struct Queue {
        var pending: [Publish] = []
        var retention: Retention?
        var isStopping = false
        var committed: (@Sendable ([Publish]) -> Void)?
        var failed: (@Sendable ([Publish], StoreError) -> Void)?
    }

    /// The most publishes one transaction takes.
    static let maxBatch = 4096
    private static let hasWork = 1
    private static let idle = 0

    private let store: any EventStore
    private let logger: Logger
    private let queue = NIOLockedValueBox(Queue())
    private let signal = ConditionLock(value: StoreWriter.idle)
    private let thread = NIOThreadPool(numberOfThreads: 1)
    private let stopped = ConditionLock(value: false)

    init(store: any EventStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// Starts the thread. `committed` and `failed` run on it, one batch at a time, in id order.
    func start(
        committed: @escaping @Sendable ([Publish]) -> Void,
        failed: @escaping @Sendable ([Publish], StoreError) -> Void
    ) {
        self.queue.withLockedValue {
            $0.committed = committed
            $0.failed = failed
        }
        self.thread.start()
        self.thread.submit { _ in self.run() }
    }

    /// Queues a publish for the next commit. Called under the broker's lock, so in id order.
    func enqueue(_ publish: Publish) {
        self.queue.withLockedValue { $0.pending.append(publish) }
        self.wake()
    }

    /// Queues retention for the store; a newer one replaces one not yet applied (horizons only grow).
    func schedule(_ retention: Retention) {
        self.queue.withLockedValue { $0.retention = $0.retention?.merged(with: retention) ?? retention }
        self.wake()
    }

    /// Commits what is pending, closes the store and ends the thread; returns when all that is done. Idempotent.
    func stop() {
        let alreadyStopping = self.queue.withLockedValue { queue -> Bool in
            defer { queue.isStopping = true }
            return queue.isStopping
        }
        if !alreadyStopping { self.wake() }
        self.stopped.lock(whenValue: true)
        self.stopped.unlock()
        if !alreadyStopping { try? self.thread.syncShutdownGracefully() }
    }

    private func wake() {
        self.signal.lock()
        self.signal.unlock(withValue: Self.hasWork)
    }

    private func run() {
        while true {
            self.signal.lock(whenValue: Self.hasWork)
            self.signal.unlock(withValue: Self.idle)
            while let work = self.takeWork() {
                switch work {
                case .commit(let batch, let committed, let failed): self.commit(batch, committed, failed)
                case .retention(let retention): self.applyRetention(retention)
                }
            }
            if self.queue.withLockedValue({ $0.isStopping && $0.pending.isEmpty }) { break }
        }
        self.store.close()
        self.stopped.lock()
        self.stopped.unlock(withValue: true)
    }

    private enum Work {
        case commit(
            [Publish], @Sendable ([Publish]) -> Void, @Sendable ([Publish], StoreError) -> Void)
        case retention(Retention)
    }

    /// Publishes first (they are waited for), retention when none are pending.
    private func takeWork() -> Work? {
        self.queue.withLockedValue { queue -> Work? in
            if !queue.pending.isEmpty, let committed = queue.committed, let failed = queue.failed {
                let count = min(queue.pending.count, Self.maxBatch)
                let batch = Array(queue.pending.prefix(count))
                queue.pending.removeFirst(count)
                return .commit(batch, committed, failed)
            }
            if let retention = queue.retention, !queue.isStopping {
                queue.retention = nil
                return .retention(retention)
            }
            return nil
        }
    }

    private func commit(
        _ batch: [Publish], _ committed: @Sendable ([Publish]) -> Void,
        _ failed: @Sendable ([Publish], StoreError) -> Void
    ) {
        var events: [StoredEvent] = []
        var keys: [StoredIdempotencyKey] = []
        events.reserveCapacity(batch.count)
        for publish in batch where publish.directTargets == nil {
            let event = publish.event
            if let key = publish.idempotencyKey {
                keys.append(
                    StoredIdempotencyKey(
                        key: key, result: publish.result, expiresAtMilliseconds: publish.keyExpiresAtMilliseconds))
            }
            if publish.isEphemeral { continue }
            events.append(
                StoredEvent(
                    id: event.id, topics: event.topics, eventType: event.eventType, data: event.data,
                    dataIsJSON: event.dataIsJSON, timeMilliseconds: event.timeMilliseconds,
                    retryMilliseconds: event.retryMilliseconds, isPrivate: event.isPrivate))
        }
        guard !events.isEmpty || !keys.isEmpty else { return committed(batch) }
        do {
            try self.store.commit(events, keys: keys)
        } catch {
            self.logger.error(
                "Store commit failed: publishes refused",
                metadata: ["events": "\(events.count)", "code": "\(error.code)", "error": "\(error.message)"])
            return failed(batch, error)
        }
        committed(batch)
    }

    private func applyRetention(_ retention: Retention) {
        do {
            try self.store.applyRetention(
                topicHorizons: retention.topicHorizons, globalHorizon: retention.globalHorizon,
                nowMilliseconds: retention.nowMilliseconds)
        } catch {
            // Nothing is lost by trying again later: horizons only grow, and the next sweep sends them again.
            self.logger.warning(
                "Store retention failed; retrying at the next sweep",
                metadata: ["code": "\(error.code)", "error": "\(error.message)"])
            self.schedule(retention)
        }
    }
}
