import CoreMetrics
import EventBroker
import Prometheus

/// The server's metrics, through swift-metrics with a Prometheus registry behind them, and the `/metrics` text.
///
/// Counters move as things happen (refusals, slow-consumer cuts); the gauges (connections by transport,
/// subscriptions, topics, history) are read from the bus when scraped, so they cost nothing in between. The bus's own
/// metrics (publishes, deliveries, publish-to-write latency) are made with ``factory`` too: pass it to `Broker`.
public final class ServerMetrics: Sendable {
    public enum Refusal: String, CaseIterable, Sendable {
        case serverFull = "server_full"
        case tooManyConnections = "too_many_connections"
        case rateLimited = "rate_limited"
        case unauthorized
        case forbidden
    }

    public let registry: PrometheusCollectorRegistry
    /// The swift-metrics factory over ``registry``.
    public let factory: PrometheusMetricsFactory
    private let refusals: [Refusal: CoreMetrics.Counter]
    private let slowConsumerCuts: [Transport: CoreMetrics.Counter]
    private let connections: [Transport: CoreMetrics.Gauge]
    private let subscriptions: CoreMetrics.Gauge
    private let topics: CoreMetrics.Gauge
    private let historyEvents: CoreMetrics.Gauge
    private let historyBytes: CoreMetrics.Gauge

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        // Publish-to-write latency: from a tenth of a millisecond to ten seconds.
        factory.durationHistogramBuckets["eventbroker_publish_to_write_seconds"] = [
            .microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10),
            .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(10),
        ]
        self.factory = factory
        var refusals: [Refusal: CoreMetrics.Counter] = [:]
        for reason in Refusal.allCases {
            refusals[reason] = CoreMetrics.Counter(
                label: "eventbroker_refusals_total", dimensions: [("reason", reason.rawValue)], factory: factory)
        }
        self.refusals = refusals
        var cuts: [Transport: CoreMetrics.Counter] = [:]
        var connections: [Transport: CoreMetrics.Gauge] = [:]
        for transport in Transport.allCases {
            cuts[transport] = CoreMetrics.Counter(
                label: "eventbroker_slow_consumer_cuts_total", dimensions: [("transport", transport.rawValue)],
                factory: factory)
            connections[transport] = CoreMetrics.Gauge(
                label: "eventbroker_connections", dimensions: [("transport", transport.rawValue)], factory: factory)
        }
        self.slowConsumerCuts = cuts
        self.connections = connections
        self.subscriptions = CoreMetrics.Gauge(label: "eventbroker_subscriptions", factory: factory)
        self.topics = CoreMetrics.Gauge(label: "eventbroker_topics", factory: factory)
        self.historyEvents = CoreMetrics.Gauge(label: "eventbroker_history_events", factory: factory)
        self.historyBytes = CoreMetrics.Gauge(label: "eventbroker_history_bytes", factory: factory)
    }

    func refused(_ reason: Refusal) {
        self.refusals[reason]?.increment()
    }

    func slowConsumerCut(_ transport: Transport) {
        self.slowConsumerCuts[transport]?.increment()
    }

    /// The Prometheus text of every metric, with the gauges read from `broker` now.
    func scrape(_ broker: Broker) -> String {
        let stats = broker.stats()
        for transport in Transport.allCases {
            self.connections[transport]?.record(stats.connections[transport] ?? 0)
        }
        self.subscriptions.record(stats.subscriptions)
        self.topics.record(stats.topics)
        self.historyEvents.record(stats.historyEvents)
        self.historyBytes.record(stats.historyBytes)
        return self.registry.emitToString()
    }
}
