import EventBroker
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOWebSocket
import Testing

@testable import HTTPServer

/// The real pipeline on `EmbeddedChannel`s: the upgrade's exact bytes, the shared event frame, and the merge of a
/// later subscription's replay with the deliveries queued at that moment.
@Suite struct WebSocketHandlerTests {
    final class Fixture {
        let loop = EmbeddedEventLoop()
        let broker: Broker
        let api: RESTAPI
        let configuration: BrokerConfiguration

        init() {
            self.broker = Broker(
                eventLoops: [self.loop],
                configuration: BusConfiguration(heartbeatInterval: .seconds(15), batchWindow: .zero),
                clock: BrokerClock { 1_000_000_000_000 })
            self.configuration = BrokerConfiguration()
            self.api = RESTAPI(broker: self.broker, configuration: self.configuration, startedAt: .now)
        }

        /// A connection that has sent the upgrade request for `target`, with the `101` and `connected` read.
        func connect(_ target: String = "/api/ws") throws -> (channel: EmbeddedChannel, head: String) {
            let channel = EmbeddedChannel(loop: self.loop)
            try HTTPPipeline.configure(
                channel, api: self.api, configuration: self.configuration, logger: Logger(label: "test"))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try channel.writeInbound(
                ByteBuffer(
                    string:
                        "GET \(target) HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                ))
            self.loop.run()
            let head = String(buffer: try #require(try channel.readOutbound(as: ByteBuffer.self)))
            _ = try Self.messages(channel)
            return (channel, head)
        }

        func publish(_ topics: [String], _ data: String) throws -> EventID {
            try self.broker.publish(PublishRequest(topics: topics.map { try TopicName($0) }, data: data)).id
        }

        /// Sends one masked text frame.
        func send(_ text: String, on channel: EmbeddedChannel) throws {
            try channel.writeInbound(
                ByteBuffer(bytes: RawConnection.clientFrame(opcode: 0x1, payload: Array(text.utf8))))
        }

        /// Every text message written so far, parsed.
        static func messages(_ channel: EmbeddedChannel) throws -> [JSONValue] {
            var messages: [JSONValue] = []
            while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
                while buffer.readableBytes > 0 {
                    let first = buffer.readInteger(as: UInt8.self) ?? 0
                    var length = Int(buffer.readInteger(as: UInt8.self) ?? 0)
                    if length == 126 { length = Int(buffer.readInteger(as: UInt16.self) ?? 0) }
                    if length == 127 { length = Int(buffer.readInteger(as: UInt64.self) ?? 0) }
                    let read = buffer.readBytes(length: length)
                    let payload = try #require(read, "truncated frame")
                    if first & 0x0F == 0x1 { messages.append(try JSONParser.parse(payload)) }
                }
            }
            return messages
        }
    }

    @Test func upgradeWritesTheExact101ThenLeavesOnlyTheWebSocketHandlers() throws {
        let fixture = Fixture()
        let (channel, head) = try fixture.connect("/api/ws?topic=news")
        #expect(
            head
                == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nConnection: Upgrade\r\n\r\n"
        )
        let pipeline = channel.pipeline.syncOperations
        #expect(throws: (any Error).self) { try pipeline.handler(type: RequestTimeoutHandler.self) }
        #expect(throws: (any Error).self) { try pipeline.handler(type: HTTPRequestHandler.self) }
        _ = try pipeline.handler(type: WebSocketHandler.self)
        _ = try pipeline.handler(type: ByteToMessageHandler<WebSocketFrameDecoder>.self)
        _ = try channel.finish()
    }

    @Test func everyConnectionWritesTheSameEventFrameBuffer() throws {
        let fixture = Fixture()
        let first = try fixture.connect("/api/ws?topic=news").channel
        let second = try fixture.connect("/api/ws?topic=news").channel
        let id = try fixture.publish(["news"], "hello")
        fixture.loop.run()
        let a = try #require(try first.readOutbound(as: ByteBuffer.self))
        let b = try #require(try second.readOutbound(as: ByteBuffer.self))
        let payload = #"{"type":"event","topic":"news","data":"hello","id":"\#(id)"}"#
        #expect(Array(a.readableBytesView) == [0x81, UInt8(payload.utf8.count)] + Array(payload.utf8))
        let addresses = [a, b].map { buffer in buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } }
        #expect(addresses[0] == addresses[1], "the frame was copied per connection")
        _ = try first.finish()
        _ = try second.finish()
    }

    @Test func laterSubscriptionMergesItsReplayWithQueuedDeliveriesInIDOrderWithoutRepeats() throws {
        let fixture = Fixture()
        let channel = try fixture.connect("/api/ws?topic=a").channel
        let e0 = try fixture.publish(["a", "b"], "e0")
        fixture.loop.run()
        #expect(try Fixture.messages(channel).map { $0["id"] } == [.string(e0.description)])
        // Published but not yet delivered on this loop when the subscription to b arrives.
        let e1 = try fixture.publish(["a"], "e1")
        let e2 = try fixture.publish(["b"], "e2")
        let e3 = try fixture.publish(["a", "b"], "e3")
        let e4 = try fixture.publish(["b"], "e4")
        try fixture.send(#"{"type":"subscribe","topics":["b"],"lastEventId":"0","ref":1}"#, on: channel)
        fixture.loop.run()
        let messages = try Fixture.messages(channel)
        #expect(messages.first?["type"] == .string("ack"))
        #expect(messages.first?["topics"] == .array([.string("a"), .string("b")]))
        // e0 was already sent for a; e1 and e3 were queued for a; e2 and e4 come from b's history.
        #expect(messages.dropFirst().map { $0["id"] } == [e1, e2, e3, e4].map { .string($0.description) })
        let e5 = try fixture.publish(["b"], "e5")
        fixture.loop.run()
        #expect(try Fixture.messages(channel).map { $0["id"] } == [.string(e5.description)])
        try fixture.send(#"{"type":"unsubscribe","topics":["a"]}"#, on: channel)
        _ = try fixture.publish(["a"], "e6")
        let e7 = try fixture.publish(["b"], "e7")
        fixture.loop.run()
        let after = try Fixture.messages(channel)
        #expect(after.map { $0["type"] } == [.string("ack"), .string("event")])
        #expect(after.last?["id"] == .string(e7.description))
        _ = try channel.finish()
    }

    @Test func resubscribingFromAnOldIDDoesNotRepeatWhatAnEarlierReplaySent() throws {
        let fixture = Fixture()
        let e0 = try fixture.publish(["a", "b"], "e0")
        let e1 = try fixture.publish(["b"], "e1")
        let channel = try fixture.connect("/api/ws").channel
        try fixture.send(#"{"type":"subscribe","topics":["a"],"lastEventId":"0"}"#, on: channel)
        fixture.loop.run()
        #expect(try Fixture.messages(channel).dropFirst().map { $0["id"] } == [.string(e0.description)])
        try fixture.send(#"{"type":"subscribe","topics":["b"],"lastEventId":"0"}"#, on: channel)
        fixture.loop.run()
        // e0 came with a's replay already.
        #expect(try Fixture.messages(channel).dropFirst().map { $0["id"] } == [.string(e1.description)])
        _ = try channel.finish()
    }
}
