import EventBroker
import NIOCore
import Testing

@testable import HTTPServer

/// `/api/ws` over a raw socket: the handshake and its refusals, framing rules and their close codes, liveness,
/// slow consumers and shutdown, with exact bytes on the wire.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct WebSocketProtocolTests {
    // MARK: Handshake

    @Test func upgradeAnswersWithTheRFCAcceptValueThenAConnectedMessage() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        let head = try client.upgrade("/api/ws?topic=orders&topic=audit/*")
        #expect(head.status == 101)
        // RFC 6455 §1.3's example key and answer.
        #expect(head.headers.first { $0.name == "Sec-WebSocket-Accept" }?.value == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(head.headers.first { $0.name.lowercased() == "upgrade" }?.value.lowercased() == "websocket")
        #expect(head.headers.first { $0.name.lowercased() == "connection" }?.value.lowercased() == "upgrade")
        let connected = try client.readMessage(type: "connected")
        guard case .string(let clientID)? = connected["clientId"] else {
            Issue.record("no clientId in \(connected)")
            return
        }
        #expect(clientID.utf8.count == 15)
        #expect(connected["topics"] == .array([.string("orders"), .string("audit/*")]))
        #expect(server.broker.stats().connections[.webSocket] == 1)
        try await server.stop()
    }

    struct Refusal: CustomTestStringConvertible, Sendable {
        let name: String
        let request: String
        let status: Int
        let code: String
        var header: (String, String)?

        var testDescription: String { self.name }
    }

    static let refusals: [Refusal] = [
        Refusal(
            name: "plain GET", request: "GET /api/ws HTTP/1.1\r\nHost: x\r\n\r\n", status: 426,
            code: "upgrade_required", header: ("Upgrade", "websocket")),
        Refusal(
            name: "version 8",
            request:
                "GET /api/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            status: 426, code: "unsupported_websocket_version", header: ("Sec-WebSocket-Version", "13")),
        Refusal(
            name: "key that is not a 16-byte nonce",
            request:
                "GET /api/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n",
            status: 400, code: "invalid_websocket_key"),
        Refusal(
            name: "no Connection: Upgrade",
            request:
                "GET /api/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            status: 400, code: "bad_upgrade"),
        Refusal(
            name: "invalid topic",
            request:
                "GET /api/ws?topic=a%20b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            status: 400, code: "invalid_selector"),
        Refusal(
            name: "POST", request: "POST /api/ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", status: 405,
            code: "method_not_allowed"),
    ]

    @Test(arguments: Self.refusals)
    func refusedHandshakeGetsAJSONErrorAndTheConnectionCloses(_ refusal: Refusal) async throws {
        let server = try await TestServer()
        let client = try server.connect()
        try client.send(refusal.request)
        let response = try client.readResponse()
        #expect(response.status == refusal.status)
        #expect(response.errorCode == refusal.code, "\(response.text)")
        if let (name, value) = refusal.header {
            #expect(response.header(name) == value)
        }
        if refusal.status != 405 {
            try client.waitForClose()
        }
        #expect(server.broker.stats().connections[.webSocket] ?? 0 == 0)
        try await server.stop()
    }

    // MARK: Framing

    struct Violation: CustomTestStringConvertible, Sendable {
        let name: String
        let frames: [(opcode: UInt8, payload: [UInt8], fin: Bool, rsv1: Bool, masked: Bool)]
        let closeCode: UInt16

        var testDescription: String { self.name }
    }

    static let violations: [Violation] = [
        Violation(
            name: "unmasked frame", frames: [(0x1, Array(#"{"type":"ping"}"#.utf8), true, false, false)],
            closeCode: 1002),
        Violation(
            name: "reserved bit without an extension", frames: [(0x1, [0x7B, 0x7D], true, true, true)], closeCode: 1002),
        Violation(name: "unknown opcode", frames: [(0x3, [], true, false, true)], closeCode: 1002),
        Violation(name: "continuation without a message", frames: [(0x0, [0x41], true, false, true)], closeCode: 1002),
        Violation(
            name: "new message inside a fragmented one",
            frames: [(0x1, [0x7B], false, false, true), (0x1, [0x7D], true, false, true)], closeCode: 1002),
        Violation(name: "fragmented ping", frames: [(0x9, [0x41], false, false, true)], closeCode: 1002),
        Violation(
            name: "ping over 125 bytes", frames: [(0x9, [UInt8](repeating: 0x41, count: 126), true, false, true)],
            closeCode: 1002),
        Violation(
            name: "text that is not UTF-8", frames: [(0x1, [0x22, 0xFF, 0xFE, 0x22], true, false, true)],
            closeCode: 1007),
        Violation(
            name: "frame over the message limit",
            frames: [(0x1, [UInt8](repeating: 0x20, count: 5000), true, false, true)], closeCode: 1009),
        Violation(
            name: "fragments over the message limit",
            frames: [
                (0x1, [UInt8](repeating: 0x20, count: 3000), false, false, true),
                (0x0, [UInt8](repeating: 0x20, count: 3000), true, false, true),
            ], closeCode: 1009),
    ]

    @Test(arguments: Self.violations)
    func protocolViolationClosesWithTheMatchingCode(_ violation: Violation) async throws {
        let server = try await TestServer { $0.maxWebSocketMessageBytes = 4096 }
        let client = try server.connect()
        #expect(try client.upgrade().status == 101)
        _ = try client.readMessage(type: "connected")
        for frame in violation.frames {
            try client.sendFrame(
                opcode: frame.opcode, payload: frame.payload, fin: frame.fin, rsv1: frame.rsv1, masked: frame.masked)
        }
        #expect(try client.readCloseCode() == violation.closeCode)
        try client.waitForClose()
        #expect(try server.waitUntil { server.broker.stats().connections[.webSocket] ?? 0 == 0 })
        try await server.stop()
    }

    @Test func fragmentedMessageIsAssembledAroundAPing() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        try client.upgrade()
        _ = try client.readMessage(type: "connected")
        let message = Array(#"{"type":"ping","ref":"frag"}"#.utf8)
        try client.sendFrame(opcode: 0x1, payload: Array(message[..<5]), fin: false)
        try client.sendFrame(opcode: 0x9, payload: Array("beat".utf8))
        try client.sendFrame(opcode: 0x0, payload: Array(message[5..<12]), fin: false)
        try client.sendFrame(opcode: 0x0, payload: Array(message[12...]))
        let pong = try client.readFrame()
        #expect(pong == RawConnection.Frame(opcode: 0xA, payload: Array("beat".utf8)))
        let reply = try client.readMessage(type: "pong")
        #expect(reply["ref"] == .string("frag"))
        try await server.stop()
    }

    @Test func binaryMessageGetsAnErrorAndTheConnectionStays() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        try client.upgrade()
        _ = try client.readMessage(type: "connected")
        try client.sendFrame(opcode: 0x2, payload: [1, 2, 3])
        #expect(try client.readMessage(type: "error")["code"] == .string("unsupported_data"))
        try client.sendText(#"{"type":"ping","ref":2}"#)
        #expect(try client.readMessage(type: "pong")["ref"] == .number("2"))
        try await server.stop()
    }

    @Test func clientCloseIsEchoedAndTheConnectionEnds() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        try client.upgrade()
        _ = try client.readMessage(type: "connected")
        try client.sendFrame(opcode: 0x8, payload: [0x03, 0xE8] + Array("bye".utf8))
        #expect(try client.readCloseCode() == 1000)
        try client.waitForClose()
        #expect(try server.waitUntil { server.broker.stats().connections[.webSocket] ?? 0 == 0 })
        try await server.stop()
    }

    // MARK: Compression

    @Test func permessageDeflateCompressesEventsAndRepliesAndInflatesClientMessages() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        let head = try client.upgrade(
            "/api/ws?topic=zipped",
            extraHeaders: [("Sec-WebSocket-Extensions", "x-unknown, permessage-deflate; client_max_window_bits")])
        #expect(head.status == 101)
        #expect(
            head.headers.first { $0.name == "Sec-WebSocket-Extensions" }?.value
                == "permessage-deflate; server_no_context_takeover; client_max_window_bits=15")
        let inflater = try PerMessageDeflateDecompressor(windowBits: 15, noContextTakeover: true)
        func inflate(_ frame: RawConnection.Frame) throws -> JSONValue {
            #expect(frame.rsv1, "a server message was not compressed")
            let text = try inflater.decompress(ByteBuffer(bytes: frame.payload), maxBytes: 1 << 20)
            return try JSONParser.parse(text.readableBytesView)
        }
        #expect(try inflate(client.readFrame())["type"] == .string("connected"))
        let data = String(repeating: "compressible ", count: 400)
        let id = try server.publish(#"{"topic":"zipped","data":"\#(data)"}"#)
        let eventFrame = try client.readFrame()
        #expect(eventFrame.payload.count < data.utf8.count / 10)
        let event = try inflate(eventFrame)
        #expect(event["id"] == .string(id))
        #expect(event["data"] == .string(data))
        // A compressed client message, in two fragments with RSV1 on the first only.
        let compressor = try PerMessageDeflateCompressor()
        let message = Array(
            compressor.compress(ByteBuffer(string: #"{"type":"ping","ref":"\#(data)"}"#)).readableBytesView)
        try client.sendFrame(opcode: 0x1, payload: Array(message.prefix(10)), fin: false, rsv1: true)
        try client.sendFrame(opcode: 0x0, payload: Array(message.dropFirst(10)))
        let pong = try inflate(client.readFrame())
        #expect(pong["type"] == .string("pong"))
        #expect(pong["ref"] == .string(data))
        // Corrupt DEFLATE data is data inconsistent with the message type.
        try client.sendFrame(opcode: 0x1, payload: [0xFF, 0xFF, 0xFF], rsv1: true)
        #expect(try client.readCloseCode() == 1007)
        try await server.stop()
    }

    @Test func compressedMessageThatInflatesPastTheLimitClosesWith1009() async throws {
        let server = try await TestServer { $0.maxWebSocketMessageBytes = 4096 }
        let client = try server.connect()
        try client.upgrade(extraHeaders: [("Sec-WebSocket-Extensions", "permessage-deflate")])
        _ = try client.readFrame()
        let bomb = try PerMessageDeflateCompressor().compress(
            ByteBuffer(string: #"{"type":"ping","ref":"\#(String(repeating: "a", count: 100_000))"}"#))
        #expect(bomb.readableBytes < 4096)
        try client.sendFrame(opcode: 0x1, payload: Array(bomb.readableBytesView), rsv1: true)
        #expect(try client.readCloseCode() == 1009)
        try await server.stop()
    }

    @Test func withoutAnOfferNothingIsCompressedAndRSV1IsAProtocolError() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        let head = try client.upgrade()
        #expect(!head.headers.contains { $0.name == "Sec-WebSocket-Extensions" })
        #expect(try client.readFrame().rsv1 == false)
        try client.sendFrame(opcode: 0x1, payload: [0x7B, 0x7D], rsv1: true)
        #expect(try client.readCloseCode() == 1002)
        try await server.stop()
    }

    // MARK: Liveness, slow consumers, shutdown

    @Test func silentClientIsPingedThenClosed() async throws {
        let server = try await TestServer { $0.bus.heartbeatInterval = .milliseconds(200) }
        let client = try server.connect()
        try client.upgrade()
        _ = try client.readMessage(type: "connected")
        let ping = try client.readFrame(timeout: .seconds(3))
        #expect(ping.opcode == 0x9)
        try client.waitForClose(timeout: .seconds(3))
        #expect(try server.waitUntil { server.broker.stats().connections[.webSocket] ?? 0 == 0 })
        try await server.stop()
    }

    @Test func clientAnsweringPingsStaysConnected() async throws {
        let server = try await TestServer { $0.bus.heartbeatInterval = .milliseconds(200) }
        let client = try server.connect()
        try client.upgrade()
        _ = try client.readMessage(type: "connected")
        // Ten heartbeats: without answers the connection would be gone after three.
        let deadline = ContinuousClock.now + .seconds(2)
        var pings = 0
        while ContinuousClock.now < deadline {
            let frame = try client.readFrame(timeout: .seconds(2))
            #expect(frame.opcode == 0x9)
            pings += 1
            try client.sendFrame(opcode: 0xA, payload: frame.payload)
        }
        #expect(pings >= 3)
        #expect(server.broker.stats().connections[.webSocket] == 1)
        try await server.stop()
    }

    @Test func stalledWebSocketIsCutAsASlowConsumer() async throws {
        let server = try await TestServer { $0.slowConsumerBytes = 64 * 1024 }
        let stalled = try server.connect(receiveBufferSize: 4096)
        try stalled.upgrade("/api/ws?topic=firehose")
        _ = try stalled.readMessage(type: "connected")
        let payload = String(repeating: "x", count: 8000)
        var published = 0
        while published < 2000 && server.broker.stats().connections[.webSocket] == 1 {
            try server.publish(#"{"topic":"firehose","data":"\#(payload)"}"#)
            published += 1
        }
        #expect(server.broker.stats().connections[.webSocket] ?? 0 == 0, "the stalled WebSocket was not cut")
        #expect(published < 2000)
        try await server.stop()
    }

    @Test func shutdownClosesWithGoingAway() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        try client.upgrade()
        _ = try client.readMessage(type: "connected")
        await server.server.stop()
        #expect(try client.readCloseCode() == 1001)
        try client.waitForClose()
        try await server.stop()
    }

    @Test func upgradeRequestThatNeverEndsIsTimedOut() async throws {
        let server = try await TestServer { $0.requestTimeout = .milliseconds(500) }
        let client = try server.connect()
        try client.send("GET /api/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        let start = ContinuousClock.now
        try client.waitForClose(timeout: .seconds(3))
        #expect(ContinuousClock.now - start < .seconds(3))
        try await server.stop()
    }

    // MARK: The bus

    @Test func publishOverWebSocketReachesSSEAndWebSocketSubscribersWithOneID() async throws {
        let server = try await TestServer()
        let sse = try server.connect()
        _ = try sse.openStream("/api/events?topic=mixed")
        _ = try sse.readMessages(count: 1)
        let subscriber = try server.connect()
        try subscriber.upgrade("/api/ws?topic=mixed")
        _ = try subscriber.readMessage(type: "connected")
        let publisher = try server.connect()
        try publisher.upgrade()
        _ = try publisher.readMessage(type: "connected")
        try publisher.sendText(#"{"type":"publish","topic":"mixed","data":{"n":1},"event":"e","ref":"r"}"#)
        let ack = try publisher.readMessage(type: "ack")
        #expect(ack["ref"] == .string("r"))
        guard case .string(let id)? = ack["id"] else {
            Issue.record("no id in \(ack)")
            return
        }
        let event = try subscriber.readMessage(type: "event")
        #expect(
            event
                == .object([
                    ("type", .string("event")), ("topic", .string("mixed")), ("event", .string("e")),
                    ("data", .object([("n", .number("1"))])), ("id", .string(id)),
                ]))
        let message = try #require(try sse.readMessages(count: 1).first)
        #expect(message.id == id)
        #expect(message.data == #"{"n":1}"#)
        try await server.stop()
    }

    @Test func publishErrorOverWebSocketCarriesTheRefAndTheConnectionStays() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        try client.upgrade()
        _ = try client.readMessage(type: "connected")
        try client.sendText(#"{"type":"publish","topic":"$broadcast","data":"x","ref":9}"#)
        let error = try client.readMessage(type: "error")
        #expect(error["code"] == .string("reserved_topic"))
        #expect(error["ref"] == .number("9"))
        try client.sendText(#"{"type":"subscribe","topics":["a b"],"ref":10}"#)
        let selectorError = try client.readMessage(type: "error")
        #expect(selectorError["code"] == .string("invalid_selector"))
        #expect(selectorError["ref"] == .number("10"))
        try client.sendText(#"{"type":"ping"}"#)
        #expect(try client.readMessage(type: "pong")["ref"] == nil)
        try await server.stop()
    }
}
