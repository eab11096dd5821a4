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
    /// Schedules `expire` on `eventLoop` for when `principal`'s token is no longer accepted (`exp` plus the clock-skew
    /// leeway, exactly when a reconnection with it would be refused); nil when it never expires (no token, or no
    /// `exp`). Cancel the task when the stream ends first: it holds what `expire` captures.
    static func schedule(
        for principal: Principal, on eventLoop: any EventLoop, now: Date = Date(),
        _ expire: @escaping @Sendable () -> Void
    ) -> Scheduled<Void>? {
        guard let acceptedUntil = principal.acceptedUntil else { return nil }
        let seconds = acceptedUntil.timeIntervalSince(now)
        // Beyond about 292 years the nanoseconds overflow; such a token may as well never expire.
        guard seconds < 9e9 else { return nil }
        let delay = TimeAmount.nanoseconds(Int64(max(0, seconds) * 1e9))
        return eventLoop.scheduleTask(in: delay, expire)
    }
}
