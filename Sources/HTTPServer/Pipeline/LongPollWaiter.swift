import EventBroker

/// Holds a `GET /api/events/history?wait=S` request open: registered on the bus like a stream, it tells its request
/// handler when an event arrives on the selected topics, so the handler can answer with the new history page.
final class LongPollWaiter: Subscriber {
    let clientID = ClientID.random()
    private let onEvent: () -> Void

    init(onEvent: @escaping () -> Void) {
        self.onEvent = onEvent
    }

    func deliver(_ event: BrokerEvent) -> Delivery {
        self.onEvent()
        return .skipped
    }

    func flush() {}

    func heartbeat() {}
}

@available(*, unavailable)
extension LongPollWaiter: Sendable {}
