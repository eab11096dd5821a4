import EventBroker
import InMemoryLogging
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import HTTPServer

/// Long polls (`GET /api/events/history?wait=S`) through the real pipeline on an `EmbeddedChannel`.
@Suite struct LongPollTests {
    /// What a connection leaves behind, held weakly: all nil once everything it made has been freed.
    struct Leftovers {
        weak var channel: EmbeddedChannel?
        weak var handler: HTTPRequestHandler?
        weak var broker: Broker?
    }

    @Test func pollClosedWhileWaitingIsFreedAndUnsubscribesOnce() throws {
        let logs = InMemoryLogHandler()
        let leftovers = try self.closeWhileWaiting("/api/events/history?topic=news&wait=5", logs: logs)
        #expect(logs.entries.filter { $0.message == "Subscriber detached" }.count == 1)
        #expect(leftovers.handler == nil, "the request handler is in a reference cycle")
        #expect(leftovers.channel == nil, "the channel is in a reference cycle")
        #expect(leftovers.broker == nil, "something of the closed connection holds the broker")
    }

    /// Sends `target` as a GET on a broker of its own, closes the connection while the poll waits, then shuts the
    /// broker and loop down and lets go of them.
    private func closeWhileWaiting(_ target: String, logs: InMemoryLogHandler) throws -> Leftovers {
        let loop = EmbeddedEventLoop()
        var logger = Logger(label: "test", factory: { _ in logs })
        logger.logLevel = .debug
        let broker = Broker(
            eventLoops: [loop], configuration: BusConfiguration(batchWindow: .zero),
            clock: BrokerClock { 1_000_000_000_000 },
            logger: logger)
        let configuration = BrokerConfiguration()
        let api = RESTAPI(broker: broker, configuration: configuration, startedAt: .now)
        let channel = EmbeddedChannel(loop: loop)
        try HTTPPipeline.configure(channel, api: api, configuration: configuration, logger: logger)
        let handler = try channel.pipeline.syncOperations.handler(type: HTTPRequestHandler.self)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: "GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n"))
        loop.run()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "the poll answered before its wait")
        #expect(broker.stats().connections[.longPoll] == 1)
        _ = try channel.finish(acceptAlreadyClosed: true)
        loop.run()
        #expect(broker.stats().connections.values.reduce(0, +) == 0)
        broker.shutdown()
        try loop.syncShutdownGracefully()
        return Leftovers(channel: channel, handler: handler, broker: broker)
    }
}
