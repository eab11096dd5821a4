import CoreMetrics

/// The bus's metrics, through swift-metrics: whichever backend the factory belongs to (the server exposes them in
/// Prometheus format at `/metrics`).
///
/// Nothing here is touched per connection: publishes count once each, and deliveries once per loop batch.
public struct BusMetrics: Sendable {
    /// Events published (replays of an idempotent publish excluded).
    let publishes: Counter
    /// Events written (or queued) to subscriber connections.
    let deliveries: Counter
    /// From the publish to the write on a loop, once per event and loop that delivered it.
    let publishToWrite: Timer

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.publishes = Counter(label: "eventbroker_publishes_total", factory: factory)
        self.deliveries = Counter(label: "eventbroker_deliveries_total", factory: factory)
        self.publishToWrite = Timer(label: "eventbroker_publish_to_write_seconds", factory: factory)
    }
}
