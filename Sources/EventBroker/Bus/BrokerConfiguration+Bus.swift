/// Settings of the bus itself; `BrokerConfiguration` in HTTPServer adds the network ones.
public struct BusConfiguration: Hashable, Sendable {
    public var history: HistoryLimits
    /// Interval of the `: hb` comment on every stream.
    public var heartbeatInterval: Duration
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
        retryMilliseconds: Int = 3000,
        idempotencyWindow: Duration = .seconds(600),
        idempotencyCapacity: Int = 100_000,
        maxTopicsPerPublish: Int = 32,
        maxSelectorsPerSubscription: Int = 64,
        maxEventTypeLength: Int = 128
    ) {
        self.history = history
        self.heartbeatInterval = heartbeatInterval
        self.retryMilliseconds = retryMilliseconds
        self.idempotencyWindow = idempotencyWindow
        self.idempotencyCapacity = idempotencyCapacity
        self.maxTopicsPerPublish = maxTopicsPerPublish
        self.maxSelectorsPerSubscription = maxSelectorsPerSubscription
        self.maxEventTypeLength = maxEventTypeLength
    }
}
