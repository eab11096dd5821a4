import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import BrokerClient

@Suite struct WebSocketClientFrameHandlerTests {
    private func makeChannel(maximumMessageBytes: Int = 1024) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            WebSocketClientFrameHandler(maximumMessageBytes: maximumMessageBytes)
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        return channel
    }

    /// An unmasked frame, as a server sends it.
    fileprivate static func frame(_ opcode: WebSocketOpcode, _ payload: String, fin: Bool = true) -> WebSocketFrame {
        WebSocketFrame(fin: fin, opcode: opcode, data: ByteBuffer(string: payload))
    }

    private static func closeFrame(code: UInt16?, reason: String = "") -> WebSocketFrame {
        var payload = ByteBuffer()
        if let code {
            payload.writeInteger(code)
        }
        payload.writeString(reason)
        return WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)
    }

    /// The next frame the handler wrote, which must carry a mask key; its opcode and payload. The payload is still
    /// plain here: NIO's `WebSocketFrameEncoder` applies the key when it writes the frame.
    private static func readSentFrame(_ channel: EmbeddedChannel) throws -> (WebSocketOpcode, ByteBuffer) {
        let frame = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(frame.maskKey != nil)
        #expect(frame.fin)
        return (frame.opcode, frame.data)
    }

    @Test func reassemblesFragmentedTextAndAnswersPingInBetween() throws {
        let channel = try self.makeChannel()
        try channel.writeInbound(Self.frame(.text, #"{"type":"event","#, fin: false))
        try channel.writeInbound(Self.frame(.ping, "hb-1"))
        let (opcode, payload) = try Self.readSentFrame(channel)
        #expect(opcode == .pong)
        #expect(String(buffer: payload) == "hb-1")
        try channel.writeInbound(Self.frame(.continuation, #""id":"#, fin: false))
        try channel.writeInbound(Self.frame(.continuation, #""1"}"#))
        try channel.writeInbound(Self.frame(.text, "{}"))
        #expect(try channel.readInbound(as: String.self) == #"{"type":"event","id":"1"}"#)
        #expect(try channel.readInbound(as: String.self) == "{}")
        #expect(try channel.readInbound(as: String.self) == nil)
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
    }

    @Test func answersCloseWithTheSameCodeAndReportsIt() throws {
        let channel = try self.makeChannel()
        #expect {
            try channel.writeInbound(Self.closeFrame(code: 1001, reason: "shutting down"))
        } throws: { error in
            guard let error = error as? BrokerClientError else { return false }
            return error.code == .connectionClosed && error.closeCode == 1001
                && error.message == "The broker closed the WebSocket with 1001 (going away): shutting down"
        }
        let (opcode, payload) = try Self.readSentFrame(channel)
        #expect(opcode == .connectionClose)
        #expect(payload == ByteBuffer(bytes: [0x03, 0xE9]))
        #expect(!channel.isActive)
    }

    @Test func reportsCloseWithoutCodeAs1005AndEchoesAnEmptyClose() throws {
        let channel = try self.makeChannel()
        #expect {
            try channel.writeInbound(Self.closeFrame(code: nil))
        } throws: { error in
            (error as? BrokerClientError)?.closeCode == 1005
        }
        let (opcode, payload) = try Self.readSentFrame(channel)
        #expect(opcode == .connectionClose)
        #expect(payload.readableBytes == 0)
        #expect(!channel.isActive)
    }

    @Test(arguments: [
        ([WebSocketClientFrameHandlerTests.frame(.binary, "x")], 1003, "binary"),
        ([WebSocketClientFrameHandlerTests.frame(.continuation, "x")], 1002, "continuation frame outside a message"),
        (
            [
                WebSocketClientFrameHandlerTests.frame(.text, "a", fin: false),
                WebSocketClientFrameHandlerTests.frame(.text, "b"),
            ], 1002, "before finishing the previous one"
        ),
        ([WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: [0x22, 0xC3, 0x28]))], 1007, "UTF-8"),
        (
            [
                WebSocketClientFrameHandlerTests.frame(.text, String(repeating: "x", count: 10), fin: false),
                WebSocketClientFrameHandlerTests.frame(.continuation, "y"),
            ], 1009, "longer than 10 bytes"
        ),
    ])
    func closesOnMessagesThatBreakTheProtocol(frames: [WebSocketFrame], closeCode: Int, problem: String) throws {
        let channel = try self.makeChannel(maximumMessageBytes: 10)
        #expect {
            for frame in frames {
                try channel.writeInbound(frame)
            }
        } throws: { error in
            guard let error = error as? BrokerClientError else { return false }
            return error.code == .invalidMessage && error.message.contains(problem)
        }
        let (opcode, payload) = try Self.readSentFrame(channel)
        #expect(opcode == .connectionClose)
        #expect(payload.getInteger(at: payload.readerIndex, as: UInt16.self) == UInt16(closeCode))
        #expect(!channel.isActive)
        #expect(try channel.readInbound(as: String.self) == nil)
    }

    @Test func sendsMaskedTextFramesAndCloses1000WhenClosedFirst() throws {
        let channel = try self.makeChannel()
        try channel.writeOutbound(#"{"type":"ping","ref":1}"#)
        let (opcode, payload) = try Self.readSentFrame(channel)
        #expect(opcode == .text)
        #expect(String(buffer: payload) == #"{"type":"ping","ref":1}"#)

        try channel.close().wait()
        let (closeOpcode, closePayload) = try Self.readSentFrame(channel)
        #expect(closeOpcode == .connectionClose)
        #expect(closePayload == ByteBuffer(bytes: [0x03, 0xE8]))
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
    }
}
