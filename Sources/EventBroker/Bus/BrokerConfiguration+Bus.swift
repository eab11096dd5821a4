/// Settings of the bus itself; `BrokerConfiguration` in HTTPServer adds the network ones.
public struct BusConfiguration: Hashable, Sendable {
    public var history: HistoryLimits
    /// Interval of the `: hb` comment on every stream.
    public var heartbeatInterval: Duration
    /// While a loop is busy with fan-out (its last delivery flushed 32 connections or more), the least time between
    /// two of its deliveries: the events published within it reach each connection in one write, at the cost of up
    /// to this much delay. An event after a quiet spell, or after a delivery to fewer connections, goes out at once.
    /// Zero delivers every burst as soon as the loop gets to it.
    ///
    /// 10 ms by default: imperceptible for notifications, and under a steady stream to many connections it spares
    /// both ends a syscall per event per connection.
    public var batchWindow: Duration
    /// The reconnection delay clients are told in the first frame of a stream.
    public var retryMilliseconds: Int
    /// How long a publish's `Idempotency-Key` is remembered.
    public var idempotencyWindow: Duration
    /// How many keys are remembered at most; the oldest go first.
    public var idempotencyCapacity: Int
    public var maxTopicsPerPublish: Int
    public var maxSelectorsPerSubscription: Int
    public var maxEventTypeLength: Int

    public init(
        history: HistoryLimits = HistoryLimits(),
        heartbeatInterval: Duration = .seconds(15),
        batchWindow: Duration = .milliseconds(10),
        retryMilliseconds: Int = 3000,
        idempotencyWindow: Duration = .seconds(600),
        idempotencyCapacity: Int = 100_000,
        maxTopicsPerPublish: Int = 32,
        maxSelectorsPerSubscription: Int = 64,
        maxEventTypeLength: Int = 128
    ) {
        self.history = history
        self.heartbeatInterval = heartbeatInterval
        self.batchWindow = batchWindow
        self.retryMilliseconds = retryMilliseconds
        self.idempotencyWindow = idempotencyWindow
        self.idempotencyCapacity = idempotencyCapacity
        self.maxTopicsPerPublish = maxTopicsPerPublish
        self.maxSelectorsPerSubscription = maxSelectorsPerSubscription
        self.maxEventTypeLength = maxEventTypeLength
    }
}
