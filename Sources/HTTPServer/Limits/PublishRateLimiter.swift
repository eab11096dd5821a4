import NIOConcurrencyHelpers
import NIOCore

/// A token bucket per client (its token's subject, or its IP address): `rate` publishes per second on average, with
/// bursts of up to `burst`. A publish that finds the bucket empty is refused with `429` and a `Retry-After` of the
/// seconds until the next token.
///
/// Buckets of clients that stopped publishing are dropped once full again, so the table holds only active clients.
final class PublishRateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: NIODeadline
    }

    /// Publishes per second; 0 means no limit.
    let rate: Int
    let burst: Int
    private let buckets = NIOLockedValueBox([String: Bucket]())
    /// Buckets are swept when the table grows past this many.
    private static let sweepThreshold = 4096

    init(rate: Int, burst: Int? = nil) {
        self.rate = rate
        self.burst = max(1, burst ?? rate)
    }

    /// Takes one token from `client`'s bucket; returns nil when allowed, else the whole seconds to wait.
    func acquire(client: String, now: NIODeadline = .now()) -> Int? {
        guard self.rate > 0 else { return nil }
        let rate = Double(self.rate)
        let burst = Double(self.burst)
        return self.buckets.withLockedValue { buckets in
            var bucket = buckets[client] ?? Bucket(tokens: burst, updated: now)
            let elapsed = Double((now - bucket.updated).nanoseconds) / 1e9
            bucket.tokens = min(burst, bucket.tokens + max(0, elapsed) * rate)
            bucket.updated = now
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                buckets[client] = bucket
                if buckets.count > Self.sweepThreshold { Self.sweep(&buckets, now: now, rate: rate, burst: burst) }
                return nil
            }
            buckets[client] = bucket
            return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up)))
        }
    }

    /// Drops the buckets that have refilled completely: their clients are as if new.
    private static func sweep(_ buckets: inout [String: Bucket], now: NIODeadline, rate: Double, burst: Double) {
        buckets = buckets.filter { _, bucket in
            bucket.tokens + Double((now - bucket.updated).nanoseconds) / 1e9 * rate < burst
        }
    }
}
