import NIOConcurrencyHelpers

/// Totals shared by every client loop, for the progress line and for knowing when all deliveries are in.
/// Updated once per socket read, not per event.
final class DeliveryCounter: Sendable {
    private struct Totals {
        var received = 0
        var published = 0
        var publishFailures = 0
    }

    private let totals = NIOLockedValueBox(Totals())

    func add(_ count: Int) { self.totals.withLockedValue { $0.received += count } }

    func addPublished(_ count: Int, failed: Int) {
        self.totals.withLockedValue {
            $0.published += count
            $0.publishFailures += failed
        }
    }

    var received: Int { self.totals.withLockedValue { $0.received } }
    var published: Int { self.totals.withLockedValue { $0.published } }
    var publishFailures: Int { self.totals.withLockedValue { $0.publishFailures } }
}
