import NIOCore
import NIOWebSocket

/// The client end of an upgraded WebSocket: reassembles text messages from their frames, answers pings, and
/// speaks the closing handshake, so what reaches the handlers after it is one `String` per message.
///
/// It sits after NIO's `WebSocketFrameEncoder` and `WebSocketFrameDecoder` (and `WebSocketProtocolErrorHandler`,
/// which answers frames the decoder rejects). Every frame it sends is masked with a fresh random key, as RFC 6455
/// requires of clients.
///
/// ```
/// ← text "{…" (fin 0), ← ping "p", ← continuation "…}" (fin 1)   → fires "{……}", sends pong "p"
/// ← close 1001 "shutting down"        → sends close 1001, closes; fires the close as a BrokerClientError
/// → outbound String                   → one masked text frame
/// → close() before any close frame    → sends close 1000 first
/// ```
/// What ends the connection comes out as an error, so an `NIOAsyncChannel` reading after this handler throws it once
/// the messages before it are read: ``BrokerClientError/Code/connectionClosed`` with the peer's close code for a
/// close frame (1005 if it had none), and ``BrokerClientError/Code/invalidMessage`` for a message that is binary (closed with 1003), not
/// UTF-8 (1007), fragmented wrongly (1002) or longer than `maximumMessageBytes` (1009).
final class WebSocketClientFrameHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = String
    typealias OutboundIn = String
    typealias OutboundOut = WebSocketFrame

    private let maximumMessageBytes: Int
    /// The frames of the text message being reassembled, or `nil` between messages.
    private var fragments: ByteBuffer?
    /// Whether this side sent its close frame; nothing may follow it.
    private var closeSent = false

    init(maximumMessageBytes: Int) {
        self.maximumMessageBytes = maximumMessageBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            guard self.fragments == nil else {
                self.fail(context, .protocolError, "started a message before finishing the previous one")
                return
            }
            self.received(frame.unmaskedData, fin: frame.fin, context: context)
        case .continuation:
            guard var fragments = self.fragments else {
                self.fail(context, .protocolError, "sent a continuation frame outside a message")
                return
            }
            self.fragments = nil
            var data = frame.unmaskedData
            fragments.writeBuffer(&data)
            self.received(fragments, fin: frame.fin, context: context)
        case .binary:
            self.fail(context, .unacceptableData, "sent a binary message; the broker's protocol is JSON text")
        case .ping:
            guard !self.closeSent else { return }
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(Self.wrapOutboundOut(pong), promise: nil)
        case .pong:
            break
        case .connectionClose:
            self.peerClosed(frame, context: context)
        default:
            self.fail(context, .protocolError, "sent a frame with the reserved opcode \(frame.opcode)")
        }
    }

    /// Adds a text frame's payload (or the message so far, with a continuation appended) and fires the message
    /// when `fin` ends it.
    private func received(_ message: ByteBuffer, fin: Bool, context: ChannelHandlerContext) {
        guard message.readableBytes <= self.maximumMessageBytes else {
            self.fail(context, .messageTooLarge, "sent a message longer than \(self.maximumMessageBytes) bytes")
            return
        }
        guard fin else {
            self.fragments = message
            return
        }
        guard let text = String(validating: message.readableBytesView, as: UTF8.self) else {
            self.fail(context, .dataInconsistentWithMessage, "sent a text message that is not UTF-8")
            return
        }
        context.fireChannelRead(Self.wrapInboundOut(text))
    }

    /// Answers the peer's close frame with one carrying the same code, closes, and reports the code and reason.
    private func peerClosed(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        var payload = frame.unmaskedData
        let code = payload.readInteger(as: UInt16.self)
        let reason = payload.readString(length: payload.readableBytes) ?? ""
        var description = code.map { "\($0) (\(Self.describe(closeCode: $0)))" } ?? "no code"
        if !reason.isEmpty {
            description += ": \(reason)"
        }
        context.fireErrorCaught(
            BrokerClientError(
                .connectionClosed,
                "The broker closed the WebSocket with \(description)",
                closeCode: Int(code ?? 1005)
            )
        )
        var echo = context.channel.allocator.buffer(capacity: 2)
        if let code {
            echo.writeInteger(code)
        }
        self.sendCloseThenClose(echo, context: context)
    }

    /// Sends a close frame with `code`, reports `problem` as an ``BrokerClientError/Code/invalidMessage`` and
    /// closes.
    private func fail(_ context: ChannelHandlerContext, _ code: WebSocketErrorCode, _ problem: String) {
        self.fragments = nil
        context.fireErrorCaught(BrokerClientError(.invalidMessage, "The broker \(problem)"))
        var payload = context.channel.allocator.buffer(capacity: 2)
        payload.write(webSocketErrorCode: code)
        self.sendCloseThenClose(payload, context: context)
    }

    /// Writes a close frame with `payload` unless one was sent already, then closes the channel once it is out.
    private func sendCloseThenClose(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        guard !self.closeSent else {
            context.close(promise: nil)
            return
        }
        self.closeSent = true
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: payload)
        context.writeAndFlush(Self.wrapOutboundOut(frame)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // `WebSocketProtocolErrorHandler` has sent a close frame for what the decoder rejected.
        if error is NIOWebSocketError {
            self.closeSent = true
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !self.closeSent else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        let text = Self.unwrapOutboundIn(data)
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: buffer)
        context.write(Self.wrapOutboundOut(frame), promise: promise)
    }

    /// Closing from this side starts with a close frame (1000, normal closure) when none was sent yet.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if !self.closeSent, mode != .input, context.channel.isActive {
            self.closeSent = true
            var payload = context.channel.allocator.buffer(capacity: 2)
            payload.write(webSocketErrorCode: .normalClosure)
            let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: payload)
            context.writeAndFlush(Self.wrapOutboundOut(frame), promise: nil)
        }
        context.close(mode: mode, promise: promise)
    }

    /// The RFC 6455 name of a close code, for messages.
    static func describe(closeCode: UInt16) -> String {
        switch closeCode {
        case 1000: "normal closure"
        case 1001: "going away"
        case 1002: "protocol error"
        case 1003: "unsupported data"
        case 1007: "invalid payload data"
        case 1008: "policy violation"
        case 1009: "message too big"
        case 1011: "internal error"
        case 1012: "service restart"
        case 1013: "try again later"
        default: "unknown code"
        }
    }
}

@available(*, unavailable)
extension WebSocketClientFrameHandler: Sendable {}
