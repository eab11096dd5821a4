import BrokerBench
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `broker-cli bench` against a real broker: the load generator's counts must be exact, or its figures mean nothing.
@Suite struct BenchLiveTests {
    @Test func countsEveryDeliveryOfARun() async throws {
        let server = try await TestServer()
        let configuration = BenchConfiguration(
            port: server.port, subscribers: 40, webSocketSubscribers: 10, topics: 4, events: 400, payloadBytes: 100,
            publishers: 4, pids: [getpid()], drainTimeout: .seconds(10), topicPrefix: "bench-live", showProgress: false)
        let report = try await BenchRunner(configuration: configuration).run()
        #expect(report.connected == 40)
        #expect(report.eventsPublished == 400)
        #expect(report.publishFailures == 0)
        // Each topic has 10 subscribers, and each event goes to one topic.
        #expect(report.deliveriesExpected == 4000)
        #expect(report.deliveriesReceived == 4000)
        #expect(report.outOfOrder == 0)
        #expect(report.lost == 0)
        #expect(report.duplicates == 0)
        #expect(report.latencyMicroseconds["p50"] != nil)
        #expect(report.latencyMicroseconds["max"] != nil)
        #expect(report.publishesPerSecond > 0)
        #expect(report.brokerResidentBytesAfter ?? 0 > 0)
        // The broker is this process: its CPU time over the run is known, so each delivery has a cost.
        #expect(report.brokerCPUMicrosecondsPerDelivery ?? 0 > 0)
        #expect(report.brokerCPUMicrosecondsPerPublish ?? 0 > report.brokerCPUMicrosecondsPerDelivery ?? 0)
        #expect(report.json.contains("\"brokerCPUMicrosPerDelivery\":"))
        try await server.stop()
    }

    @Test func countsPublishesTheBrokerRefuses() async throws {
        let server = try await TestServer()
        // An unknown path: each publish is answered 404 with a JSON body, on the same keep-alive connection.
        let configuration = BenchConfiguration(
            port: server.port, subscribers: 0, events: 50, publishers: 2, publishPath: "/api/nowhere/{topic}",
            drainTimeout: .seconds(2), showProgress: false)
        let report = try await BenchRunner(configuration: configuration).run()
        #expect(report.eventsPublished == 50)
        #expect(report.publishFailures == 50)
        try await server.stop()
    }
}
