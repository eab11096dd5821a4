import EventBroker
import NIOCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Ends a stream when the token it was opened with expires: the client reconnects with a fresh token and resumes
/// from its last event id, losing nothing.
enum TokenExpiry {
    /// A stream whose token is already past `exp` (accepted within the clock-skew leeway) still gets this long, so
    /// that a reconnecting client is not cut the moment it arrives.
    static let minimumLifetime = TimeAmount.seconds(1)

    /// Schedules `expire` on `eventLoop` for when `principal`'s token expires; nil when it never does (no token, or
    /// no `exp`). Cancel the task when the stream ends first: it holds what `expire` captures.
    static func schedule(
        for principal: Principal, on eventLoop: any EventLoop, now: Date = Date(),
        _ expire: @escaping @Sendable () -> Void
    ) -> Scheduled<Void>? {
        guard let expiresAt = principal.expiresAt else { return nil }
        let seconds = expiresAt.timeIntervalSince(now)
        // Beyond about 292 years the nanoseconds overflow; such a token may as well never expire.
        guard seconds < 9e9 else { return nil }
        let delay = max(Self.minimumLifetime, .nanoseconds(Int64(seconds * 1e9)))
        return eventLoop.scheduleTask(in: delay, expire)
    }
}
