/// How ``SSEClient/run(lastEventID:onEvent:)`` waits between connections: exponential backoff from the server's
/// `retry:` hint.
///
/// The first wait after a connection ends is the base: the last `retry:` the server sent, else
/// ``initialDelay``. Each further attempt in a row that delivers no event doubles it, up to ``maximumDelay``
/// (or the base itself if the server asked for more). A connection that delivers at least one event counts as
/// a success and resets the count, so a broker that refuses with `200` plus a `retry:` hint and no events
/// still gets backed off.
///
/// ```
/// retry: 3000   →  3 s, 6 s, 12 s, 24 s, 30 s, 30 s, …
/// (no retry:)   →  1 s, 2 s, 4 s, 8 s, 16 s, 30 s, …
/// retry: 0      →  0 s, 0.2 s, 0.4 s, … (failures still back off, from 100 ms)
/// ```
public struct SSEReconnectPolicy: Hashable, Sendable {
    /// What is doubled instead of a zero base, so `retry: 0` cannot make a failing server a busy loop.
    static let minimumBackoffBase = Duration.milliseconds(100)

    /// The first wait when the server sent no `retry:`.
    public var initialDelay: Duration
    /// The longest wait the doubling reaches.
    public var maximumDelay: Duration
    /// How many reconnection attempts in a row may deliver no event before ``SSEClient/run(lastEventID:onEvent:)``
    /// gives up and throws the last error; `nil` retries until the task is cancelled.
    public var maximumAttempts: Int?

    public init(
        initialDelay: Duration = .seconds(1),
        maximumDelay: Duration = .seconds(30),
        maximumAttempts: Int? = nil
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.maximumAttempts = maximumAttempts
    }

    /// The wait before the next connection.
    /// - Parameters:
    ///   - failures: How many attempts in a row delivered no event before the one that just ended
    ///     (0 when it delivered events, or for the first attempt).
    ///   - serverRetry: The last `retry:` value the server sent, in milliseconds.
    public func delay(afterFailures failures: Int, serverRetry: Int?) -> Duration {
        let base = serverRetry.map { Duration.milliseconds($0) } ?? self.initialDelay
        guard failures > 0 else { return base }
        let cap = max(self.maximumDelay, base)
        var delay = base > .zero ? base : Self.minimumBackoffBase
        for _ in 0..<failures {
            delay *= 2
            if delay >= cap {
                return cap
            }
        }
        return delay
    }
}
