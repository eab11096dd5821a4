/// The life of one event stream (an SSE response after its head, or a WebSocket after its upgrade): what to do with
/// each published event, each writability change, each heartbeat and a shutdown.
///
/// Events are written straight to the socket while it is writable and nothing is queued. Otherwise they queue
/// behind the replay (which is drained as the socket accepts it) or behind the bytes the client has not read yet.
/// Live bytes queued beyond `queueLimit` mean the client is not keeping up: it is closed as a slow consumer and
/// resumes from history with `Last-Event-ID`. Replayed events cost nothing extra (history holds them anyway), so
/// they never count against the limit.
struct StreamStateMachine {
    private enum State {
        case awaitingStart
        case streaming(isWritable: Bool, queuedEvents: Int, queuedLiveBytes: Int)
        case closed
    }

    enum DeliverAction: Equatable {
        case write
        case enqueue
        case closeSlowConsumer
        case none
    }

    enum WritabilityAction: Equatable {
        case drainQueue
        case none
    }

    enum HeartbeatAction: Equatable {
        case write
        case none
    }

    enum QuiesceAction: Equatable {
        /// SSE writes a `retry:` hint and ends the response; a WebSocket closes with 1001 (going away).
        case endStream
        case none
    }

    let queueLimit: Int
    private var state = State.awaitingStart

    init(queueLimit: Int) {
        self.queueLimit = queueLimit
    }

    /// The head, the `connected` frame and the replay were handed to the handler; `queuedReplay` of them queued.
    mutating func started(isWritable: Bool, queuedReplay: Int) {
        guard case .awaitingStart = self.state else { preconditionFailure("Invalid state: \(self.state)") }
        self.state = .streaming(isWritable: isWritable, queuedEvents: queuedReplay, queuedLiveBytes: 0)
    }

    /// A later replay (a WebSocket subscribing to more topics) put `events` more in the queue.
    mutating func replayQueued(events: Int) -> WritabilityAction {
        guard case .streaming(let isWritable, let queuedEvents, let queuedLiveBytes) = self.state else { return .none }
        self.state = .streaming(
            isWritable: isWritable, queuedEvents: queuedEvents + events, queuedLiveBytes: queuedLiveBytes)
        return isWritable ? .drainQueue : .none
    }

    mutating func eventPublished(bytes: Int) -> DeliverAction {
        switch self.state {
        case .awaitingStart:
            preconditionFailure("Invalid state: \(self.state)")
        case .streaming(let isWritable, let queuedEvents, let queuedLiveBytes):
            if isWritable && queuedEvents == 0 { return .write }
            if queuedLiveBytes + bytes > self.queueLimit {
                self.state = .closed
                return .closeSlowConsumer
            }
            self.state = .streaming(
                isWritable: isWritable, queuedEvents: queuedEvents + 1, queuedLiveBytes: queuedLiveBytes + bytes)
            return .enqueue
        case .closed:
            return .none
        }
    }

    mutating func writabilityChanged(isWritable: Bool) -> WritabilityAction {
        switch self.state {
        case .awaitingStart:
            return .none
        case .streaming(_, let queuedEvents, let queuedLiveBytes):
            self.state = .streaming(
                isWritable: isWritable, queuedEvents: queuedEvents, queuedLiveBytes: queuedLiveBytes)
            return isWritable && queuedEvents > 0 ? .drainQueue : .none
        case .closed:
            return .none
        }
    }

    /// The handler wrote `events` queued events, `liveBytes` of them live, and stopped (queue empty or unwritable).
    mutating func drained(events: Int, liveBytes: Int, isWritable: Bool) {
        guard case .streaming(_, let queuedEvents, let queuedLiveBytes) = self.state else { return }
        precondition(events <= queuedEvents && liveBytes <= queuedLiveBytes, "drained more than was queued")
        self.state = .streaming(
            isWritable: isWritable, queuedEvents: queuedEvents - events, queuedLiveBytes: queuedLiveBytes - liveBytes)
    }

    mutating func heartbeatDue() -> HeartbeatAction {
        if case .streaming(true, 0, _) = self.state { return .write }
        return .none
    }

    mutating func shouldQuiesce() -> QuiesceAction {
        switch self.state {
        case .awaitingStart, .streaming:
            self.state = .closed
            return .endStream
        case .closed:
            return .none
        }
    }

    mutating func channelClosed() {
        self.state = .closed
    }

    var isClosed: Bool {
        if case .closed = self.state { return true }
        return false
    }
}
