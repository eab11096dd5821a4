import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import BrokerClient

/// The whole client pipeline (HTTP, upgrade, frame codec, frame handler, async bridge) on a
/// `NIOAsyncTestingChannel`, fed exact bytes.
@Suite struct WebSocketClientPipelineTests {
    /// The sample key of RFC 6455 section 1.3 and the `Sec-WebSocket-Accept` it calls for.
    private static let requestKey = "dGhlIHNhbXBsZSBub25jZQ=="
    private static let acceptKey = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    private static func upgradeAnswer(accept: String = Self.acceptKey) -> String {
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: \(accept)\r\n\r\n"
    }

    /// An unmasked frame of fewer than 126 payload bytes, as a server writes it.
    private static func frameBytes(_ opcode: UInt8, _ payload: String, fin: Bool = true) -> [UInt8] {
        [(fin ? 0x80 : 0) | opcode, UInt8(payload.utf8.count)] + Array(payload.utf8)
    }

    /// Connects `channel` through the client's pipeline and returns the handshake's future and the request sent.
    private static func connect(
        _ channel: NIOAsyncTestingChannel,
        client: WebSocketClient
    ) async throws -> (EventLoopFuture<WebSocketHandshakeHandler.Connection>, String) {
        let upgraded = try await channel.eventLoop.submit {
            try client.configure0(channel, url: client.url, requestKey: Self.requestKey)
        }.get()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080))
        var request = ""
        while let buffer = try await channel.readOutbound(as: ByteBuffer.self) {
            request += String(buffer: buffer)
        }
        return (upgraded, request)
    }

    @Test func readsFramesThatArriveInTheSameReadAsTheUpgradeAnswer() async throws {
        let channel = NIOAsyncTestingChannel()
        let client = try WebSocketClient(
            url: BrokerURL(webSocket: "ws://broker.local:8080/api/ws?topic=orders"),
            headers: [("Authorization", "Bearer t")]
        )
        let (upgraded, request) = try await Self.connect(channel, client: client)
        #expect(request.hasPrefix("GET /api/ws?topic=orders HTTP/1.1\r\n"))
        for header in [
            "Host: broker.local:8080", "Authorization: Bearer t", "Connection: upgrade", "Upgrade: websocket",
            "Sec-WebSocket-Key: \(Self.requestKey)", "Sec-WebSocket-Version: 13",
        ] {
            #expect(request.contains("\r\n\(header)\r\n"), "\(header)")
        }

        var answer = ByteBuffer(string: Self.upgradeAnswer())
        answer.writeBytes(Self.frameBytes(0x1, #"{"type":"connected","clientId":"c","topics":[]}"#))
        answer.writeBytes(Self.frameBytes(0x1, #"{"type":"event","id":"1","#, fin: false))
        answer.writeBytes(Self.frameBytes(0x9, "p"))
        answer.writeBytes(Self.frameBytes(0x0, #""data":"a"}"#))
        try await channel.writeInbound(answer)

        let connection = try await upgraded.get()
        let messages = try await connection.executeThenClose { inbound, _ in
            var iterator = inbound.makeAsyncIterator()
            return [try await iterator.next(), try await iterator.next()]
        }
        #expect(
            messages == [#"{"type":"connected","clientId":"c","topics":[]}"#, #"{"type":"event","id":"1","data":"a"}"#]
        )
        // The pong went out as the ping arrived, the close (1000) when the connection was closed. NIO's encoder
        // writes a frame's header and payload as separate buffers; join everything written.
        var written = ByteBuffer()
        while var buffer = try await channel.readOutbound(as: ByteBuffer.self) {
            written.writeBuffer(&buffer)
        }
        #expect(Self.readMaskedFrame(&written) == [0x8A, UInt8(ascii: "p")])  // fin + pong, "p"
        #expect(Self.readMaskedFrame(&written) == [0x88, 0x03, 0xE8])  // fin + close, 1000
        #expect(written.readableBytes == 0)
    }

    /// The first byte and unmasked payload of the masked frame (of fewer than 126 bytes) at the start of `buffer`.
    private static func readMaskedFrame(_ buffer: inout ByteBuffer) -> [UInt8]? {
        guard let header = buffer.readBytes(length: 2), header[1] & 0x80 != 0,
            let mask = buffer.readBytes(length: 4), let payload = buffer.readBytes(length: Int(header[1] & 0x7F))
        else { return nil }
        return [header[0]] + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
    }

    @Test func failsWithStatusAndBodyWhenTheUpgradeIsRefused() async throws {
        let channel = NIOAsyncTestingChannel()
        let client = try WebSocketClient(url: BrokerURL(webSocket: "ws://h/api/ws"))
        let (upgraded, _) = try await Self.connect(channel, client: client)
        let body = #"{"error":{"code":"too_many_connections","message":"Later."}}"#
        try await channel.writeInbound(
            ByteBuffer(
                string: "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            )
        )
        await #expect {
            try await upgraded.get()
        } throws: { error in
            guard let error = error as? BrokerClientError else { return false }
            return error.code == .unexpectedResponse && error.status == 503 && error.body == body && error.isRetryable
                && error.message == "ws://h/api/ws answered 503 (application/json) instead of upgrading to a WebSocket"
        }
        #expect(try await !channel.eventLoop.submit { channel.isActive }.get())
    }

    @Test func failsWhenTheAcceptKeyIsWrong() async throws {
        let channel = NIOAsyncTestingChannel()
        let client = try WebSocketClient(url: BrokerURL(webSocket: "ws://h/api/ws"))
        let (upgraded, _) = try await Self.connect(channel, client: client)
        try await channel.writeInbound(ByteBuffer(string: Self.upgradeAnswer(accept: "bm9wZQ==")))
        await #expect {
            try await upgraded.get()
        } throws: { error in
            guard let error = error as? BrokerClientError else { return false }
            return error.code == .unexpectedResponse && error.message.contains("without a valid WebSocket upgrade")
        }
    }
}
