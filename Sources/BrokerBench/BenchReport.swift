import Histogram

/// The outcome of a run, as a table for people and one JSON line for scripts.
public struct BenchReport: Sendable {
    public var subscribers = 0
    public var webSocketSubscribers = 0
    public var connected = 0
    public var topics = 0
    public var eventsPublished = 0
    public var publishFailures = 0
    public var deliveriesExpected = 0
    public var deliveriesReceived = 0
    public var outOfOrder = 0
    public var publishSeconds = 0.0
    public var deliverySeconds = 0.0
    public var latencyMicroseconds: [String: UInt64] = [:]
    public var brokerResidentBytesBefore: Int?
    public var brokerResidentBytesConnected: Int?
    public var brokerResidentBytesAfter: Int?
    public var brokerCPUPercent: Double?
    /// The broker's CPU time (user and system) from the first publish to the last delivery.
    public var brokerCPUSeconds: Double?

    public var lost: Int { max(0, self.deliveriesExpected - (self.deliveriesReceived - self.outOfOrder)) }
    public var duplicates: Int {
        max(0, self.deliveriesReceived - self.outOfOrder - self.deliveriesExpected) + self.outOfOrder
    }
    public var deliveriesPerSecond: Double {
        self.deliverySeconds > 0 ? Double(self.deliveriesReceived) / self.deliverySeconds : 0
    }
    public var publishesPerSecond: Double {
        self.publishSeconds > 0 ? Double(self.eventsPublished) / self.publishSeconds : 0
    }
    /// Broker memory per connected subscriber (resident bytes added by connecting them).
    public var bytesPerSubscriber: Int? {
        guard let before = self.brokerResidentBytesBefore, let after = self.brokerResidentBytesConnected,
            self.connected > 0
        else { return nil }
        return (after - before) / self.connected
    }

    /// Broker CPU time per delivery: what a delivery costs, however busy the machine was.
    public var brokerCPUMicrosecondsPerDelivery: Double? {
        guard let seconds = self.brokerCPUSeconds, self.deliveriesReceived > 0 else { return nil }
        return seconds * 1e6 / Double(self.deliveriesReceived)
    }
    /// Broker CPU time per published event, its fan-out included.
    public var brokerCPUMicrosecondsPerPublish: Double? {
        guard let seconds = self.brokerCPUSeconds, self.eventsPublished > 0 else { return nil }
        return seconds * 1e6 / Double(self.eventsPublished)
    }

    static let percentiles: [(String, Double)] = [("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)]

    mutating func setLatency(_ histogram: Histogram<UInt64>) {
        guard histogram.totalCount > 0 else { return }
        for (name, percentile) in Self.percentiles {
            self.latencyMicroseconds[name] = histogram.valueAtPercentile(percentile)
        }
        self.latencyMicroseconds["max"] = histogram.max
    }

    private static func milliseconds(_ microseconds: UInt64?) -> String {
        guard let microseconds else { return "null" }
        let value = Double(microseconds) / 1000
        return String(Double(Int(value * 1000)) / 1000)
    }

    private static func fixed(_ value: Double) -> String { String(Double(Int(value * 10)) / 10) }

    /// One line of JSON, stable keys, for scripts.
    public var json: String {
        var fields: [String] = [
            "\"subscribers\":\(self.subscribers)", "\"webSocketSubscribers\":\(self.webSocketSubscribers)",
            "\"connected\":\(self.connected)", "\"topics\":\(self.topics)",
            "\"eventsPublished\":\(self.eventsPublished)", "\"publishFailures\":\(self.publishFailures)",
            "\"deliveriesExpected\":\(self.deliveriesExpected)", "\"deliveriesReceived\":\(self.deliveriesReceived)",
            "\"lost\":\(self.lost)", "\"duplicates\":\(self.duplicates)", "\"outOfOrder\":\(self.outOfOrder)",
            "\"deliveriesPerSecond\":\(Self.fixed(self.deliveriesPerSecond))",
            "\"publishesPerSecond\":\(Self.fixed(self.publishesPerSecond))",
        ]
        let latency = (Self.percentiles.map(\.0) + ["max"]).map {
            "\"\($0)\":\(Self.milliseconds(self.latencyMicroseconds[$0]))"
        }
        fields.append("\"latencyMs\":{\(latency.joined(separator: ","))}")
        fields.append("\"brokerRSSBytes\":\(self.brokerResidentBytesAfter.map(String.init) ?? "null")")
        fields.append("\"brokerCPUPercent\":\(self.brokerCPUPercent.map(Self.fixed) ?? "null")")
        fields.append("\"bytesPerSubscriber\":\(self.bytesPerSubscriber.map(String.init) ?? "null")")
        fields.append(
            "\"brokerCPUMicrosPerDelivery\":\(self.brokerCPUMicrosecondsPerDelivery.map(Self.fixed) ?? "null")")
        fields.append(
            "\"brokerCPUMicrosPerPublish\":\(self.brokerCPUMicrosecondsPerPublish.map(Self.fixed) ?? "null")")
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// A short table for people.
    public var text: String {
        var lines = [
            "subscribers connected  \(self.connected) of \(self.subscribers) (\(self.webSocketSubscribers) WebSocket) on \(self.topics) topic(s)",
            "events published       \(self.eventsPublished) (\(self.publishFailures) refused), \(Self.fixed(self.publishesPerSecond))/s",
            "deliveries             \(self.deliveriesReceived) of \(self.deliveriesExpected) expected: \(self.lost) lost, \(self.duplicates) duplicated or out of order",
            "deliveries per second  \(Self.fixed(self.deliveriesPerSecond))",
        ]
        if !self.latencyMicroseconds.isEmpty {
            let parts = (Self.percentiles.map(\.0) + ["max"]).map {
                "\($0) \(Self.milliseconds(self.latencyMicroseconds[$0])) ms"
            }
            lines.append("latency                \(parts.joined(separator: ", "))")
        }
        if let rss = self.brokerResidentBytesAfter {
            var line = "broker                 RSS \(rss / 1024) KiB"
            if let cpu = self.brokerCPUPercent { line += ", CPU \(Self.fixed(cpu))%" }
            if let perDelivery = self.brokerCPUMicrosecondsPerDelivery {
                line += ", \(Self.fixed(perDelivery)) µs CPU per delivery"
            }
            if let perPublish = self.brokerCPUMicrosecondsPerPublish {
                line += ", \(Self.fixed(perPublish)) µs per publish"
            }
            if let perSubscriber = self.bytesPerSubscriber { line += ", \(perSubscriber) bytes per subscriber" }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}
