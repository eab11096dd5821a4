import EventBroker
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import HTTPServer

/// The real pipeline on an `EmbeddedChannel`: raw request bytes in, exact bytes out.
@Suite struct SSEHandlerTests {
    struct Fixture {
        let loop: EmbeddedEventLoop
        let channel: EmbeddedChannel
        let broker: Broker
    }

    func makeStream(
        _ target: String = "/api/events?topic=news", headers: String = "", slowConsumerBytes: Int = 4096,
        prepare: (Broker) throws -> Void = { _ in }
    ) throws -> Fixture {
        let loop = EmbeddedEventLoop()
        let broker = Broker(
            eventLoops: [loop], configuration: BusConfiguration(heartbeatInterval: .seconds(15), batchWindow: .zero),
            clock: BrokerClock { 1_000_000_000_000 })
        try prepare(broker)
        var configuration = BrokerConfiguration(slowConsumerBytes: slowConsumerBytes)
        configuration.corsAllowedOrigins = ["*"]
        let channel = EmbeddedChannel(loop: loop)
        let api = RESTAPI(broker: broker, configuration: configuration, startedAt: .now)
        try HTTPPipeline.configure(channel, api: api, configuration: configuration, logger: Logger(label: "test"))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: "GET \(target) HTTP/1.1\r\nHost: x\r\n\(headers)\r\n"))
        loop.run()
        return Fixture(loop: loop, channel: channel, broker: broker)
    }

    /// `payload` framed as one HTTP chunk.
    static func chunk(_ payload: String) -> String {
        String(payload.utf8.count, radix: 16) + "\r\n" + payload + "\r\n"
    }

    func readAll(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test func writesEventStreamHeadThenConnectedFrameThenChunkFramedEvents() throws {
        let fixture = try self.makeStream()
        let head = try #require(try fixture.channel.readOutbound(as: ByteBuffer.self))
        #expect(
            String(buffer: head)
                == "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        let connected = String(buffer: try #require(try fixture.channel.readOutbound(as: ByteBuffer.self)))
        let bytes = Array(connected.utf8)
        let sizeEnd = try #require(bytes.firstIndex(of: UInt8(ascii: "\r")))
        let payload = String(decoding: bytes[(sizeEnd + 2)..<(bytes.count - 2)], as: UTF8.self)
        #expect(Int(String(decoding: bytes[..<sizeEnd], as: UTF8.self), radix: 16) == payload.utf8.count)
        #expect(payload.hasPrefix("retry: 3000\nevent: connected\ndata: {\"clientId\":\""))
        #expect(payload.hasSuffix("\",\"topics\":[\"news\"],\"name\":null}\n\n"))
        #expect(connected.hasSuffix("\r\n"))
        let result = try fixture.broker.publish(
            PublishRequest(topics: [try TopicName("news")], data: #"{"v":1}"#, eventType: "update"))
        fixture.loop.run()
        let frame = try #require(try fixture.channel.readOutbound(as: ByteBuffer.self))
        #expect(String(buffer: frame) == Self.chunk("id: \(result.id)\nevent: update\ndata: {\"v\":1}\n\n"))
        _ = try fixture.channel.finish()
    }

    @Test func streamLeavesNoHTTPHandlerInThePipeline() throws {
        let fixture = try self.makeStream()
        let pipeline = fixture.channel.pipeline.syncOperations
        #expect(throws: (any Error).self) { try pipeline.handler(type: RequestTimeoutHandler.self) }
        #expect(throws: (any Error).self) { try pipeline.handler(type: HTTPRequestHandler.self) }
        _ = try pipeline.handler(type: SSEHandler.self)
        _ = try fixture.channel.finish()
    }

    @Test func everySubscriberOnALoopGetsTheIdenticalBuffer() throws {
        let loop = EmbeddedEventLoop()
        let broker = Broker(
            eventLoops: [loop], configuration: BusConfiguration(batchWindow: .zero),
            clock: BrokerClock { 1_000_000_000_000 })
        var channels: [EmbeddedChannel] = []
        for _ in 0..<50 {
            let channel = EmbeddedChannel(loop: loop)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            let handler = SSEHandler(
                broker: broker, selectors: [try TopicSelector("news")], lastEventID: nil,
                responseHead: ByteBuffer(string: "head"), slowConsumerBytes: 4096, logger: Logger(label: "t"))
            try channel.pipeline.syncOperations.addHandler(handler)
            while try channel.readOutbound(as: ByteBuffer.self) != nil {}
            channels.append(channel)
        }
        _ = try broker.publish(PublishRequest(topics: [try TopicName("news")], data: "same bytes"))
        loop.run()
        var frames: [ByteBuffer] = []
        for channel in channels { frames.append(try #require(try channel.readOutbound(as: ByteBuffer.self))) }
        let first = frames[0]
        for frame in frames {
            #expect(frame == first)
            // Same storage: the bytes were encoded once and shared.
            frame.withUnsafeReadableBytes { a in
                first.withUnsafeReadableBytes { b in #expect(a.baseAddress == b.baseAddress) }
            }
        }
        for channel in channels { _ = try channel.finish() }
    }

    @Test func resumingStreamGetsGapThenReplay() throws {
        var ids: [EventID] = []
        let fixture = try self.makeStream(
            "/api/events?topic=news&lastEventId=1",
            prepare: { broker in
                for index in 0..<2 {
                    ids.append(
                        try broker.publish(PublishRequest(topics: [try TopicName("news")], data: "e\(index)")).id)
                }
            })
        let text = try self.readAll(fixture.channel)
        #expect(text.contains("event: gap\ndata: {\"lastEventId\":\"1\",\"oldestAvailable\":\"\(ids[0])\"}\n\n"))
        #expect(text.hasSuffix(Self.chunk("id: \(ids[0])\ndata: e0\n\n") + Self.chunk("id: \(ids[1])\ndata: e1\n\n")))
        let gapIndex = try #require(text.range(of: "event: gap"))
        let replayIndex = try #require(text.range(of: "id: \(ids[0])"))
        #expect(gapIndex.lowerBound < replayIndex.lowerBound)
        _ = try fixture.channel.finish()
    }

    @Test func closesConsumerThatStaysUnwritable() throws {
        let fixture = try self.makeStream(slowConsumerBytes: 200)
        _ = try self.readAll(fixture.channel)
        fixture.channel.isWritable = false
        fixture.channel.pipeline.fireChannelWritabilityChanged()
        for index in 0..<10 {
            _ = try fixture.broker.publish(
                PublishRequest(topics: [try TopicName("news")], data: String(repeating: "x", count: 30) + "\(index)"))
        }
        fixture.loop.run()
        #expect(!fixture.channel.isActive)
        #expect(fixture.broker.stats().connections[.sse] == 0)
    }

    @Test func heartbeatWritesTheSharedCommentChunk() throws {
        let fixture = try self.makeStream()
        _ = try self.readAll(fixture.channel)
        fixture.loop.advanceTime(by: .seconds(15))
        #expect(try self.readAll(fixture.channel) == "6\r\n: hb\n\n\r\n")
        _ = try fixture.channel.finish()
    }

    @Test func quiesceEndsTheStreamWithARetryHint() throws {
        let fixture = try self.makeStream()
        _ = try self.readAll(fixture.channel)
        fixture.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        fixture.loop.run()
        #expect(try self.readAll(fixture.channel) == "d\r\nretry: 1000\n\n\r\n0\r\n\r\n")
        #expect(!fixture.channel.isActive)
        #expect(fixture.broker.stats().connections[.sse] == 0)
    }
}
