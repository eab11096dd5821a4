import EventBroker
import Testing

/// `GET /metrics` over a real socket: Prometheus text whose counters and gauges follow what happened.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct MetricsTests {
    /// The samples of a Prometheus text, by name with labels (`name{label="value"}`).
    static func samples(_ text: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            samples[String(line[..<space])] = value
        }
        return samples
    }

    static func scrape(_ server: TestServer) throws -> [String: Double] {
        let response = try server.request("GET", "/metrics")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        return Self.samples(response.text)
    }

    @Test func countersAndGaugesFollowPublishesDeliveriesAndConnections() async throws {
        let server = try await TestServer()
        let sse = try server.connect()
        _ = try sse.openStream("/api/events?topic=metered&topic=other")
        _ = try sse.readMessages(count: 1)
        let socket = try server.connect()
        try socket.upgrade("/api/ws?topic=metered")
        _ = try socket.readMessage(type: "connected")
        let before = try Self.scrape(server)
        #expect(before["eventbroker_connections{transport=\"sse\"}"] == 1)
        #expect(before["eventbroker_connections{transport=\"ws\"}"] == 1)
        #expect(before["eventbroker_subscriptions"] == 3)
        #expect(before["eventbroker_publishes_total"] == 0)
        for index in 0..<3 { try server.publish(#"{"topic":"metered","data":"\#(index)"}"#) }
        _ = try sse.readMessages(count: 3)
        for _ in 0..<3 { _ = try socket.readMessage(type: "event") }
        let after = try Self.scrape(server)
        #expect(after["eventbroker_publishes_total"] == 3)
        #expect(after["eventbroker_deliveries_total"] == 6)
        #expect(after["eventbroker_history_events"] == 3)
        #expect((after["eventbroker_publish_to_write_seconds_count"] ?? 0) >= 3)
        #expect(after["eventbroker_topics"] == 2)
        try await server.stop()
    }

    @Test func refusalsAreCountedByReason() async throws {
        let server = try await TestServer {
            $0.maxConnections = 3
            $0.publishRate = 1
            $0.publishBurst = 1
        }
        try server.publish(#"{"topic":"r","data":"1"}"#)
        #expect(try server.request("POST", "/api/events/publish?topic=r", body: "2").status == 429)
        // The two connections above are closed by now on the client's side; the server must have seen it before
        // the three holders come, or one of them would be over the limit.
        #expect(try server.waitUntil { server.limitedConnections == 0 })
        let holders = try (0..<3).map { _ in try server.connect() }
        for holder in holders { try holder.send("GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n") }
        for holder in holders { _ = try holder.readResponse() }
        #expect(try server.waitUntil { server.limitedConnections == 3 }, "\(server.limitedConnections)")
        #expect(try server.request("GET", "/api/health").status == 503)
        holders[0].shutdown()
        #expect(try server.waitUntil { server.limitedConnections < 3 })
        let samples = try Self.scrape(server)
        #expect(samples["eventbroker_refusals_total{reason=\"rate_limited\"}"] == 1)
        #expect(samples["eventbroker_refusals_total{reason=\"server_full\"}"] == 1)
        #expect(samples["eventbroker_refusals_total{reason=\"too_many_connections\"}"] == 0)
        try await server.stop()
    }
}
