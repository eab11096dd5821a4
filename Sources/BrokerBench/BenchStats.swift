import Histogram
import NIOCore

/// What the subscribers on one client event loop observed. Confined to that loop; merged at the end.
final class LoopStats {
    var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    var received = 0
    var outOfOrder = 0
    var connected = 0
    var lastDeliveryNanoseconds: UInt64 = 0

    func record(latencyNanoseconds: UInt64) {
        _ = self.histogram.record(max(1, latencyNanoseconds / 1000))
    }
}

@available(*, unavailable)
extension LoopStats: Sendable {}

/// A snapshot of one loop's stats, safe to move between threads.
struct LoopStatsSnapshot: Sendable {
    let histogram: Histogram<UInt64>
    let received: Int
    let outOfOrder: Int
    let connected: Int
    let lastDeliveryNanoseconds: UInt64
}
