import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Sends the upgrade request of a ``WebSocketClient`` connection and completes its promise with the upgraded
/// channel, or fails it with why there is none.
///
/// It sits after NIOHTTP1's client handlers and `NIOHTTPClientUpgradeHandler`, which add the `Upgrade`,
/// `Connection` and `Sec-WebSocket-*` headers to the request it writes and, on `101 Switching Protocols` with the
/// right `Sec-WebSocket-Accept`, swap the HTTP handlers for NIO's WebSocket frame codec. The upgrader then calls
/// ``upgraded(channel:)``, which adds a ``WebSocketClientFrameHandler`` and the `NIOAsyncChannel` bridge and takes
/// this handler out, all before the bytes that followed the `101` are replayed.
///
/// ```
/// → GET /api/ws?topic=a&lastEventId=7 HTTP/1.1     ← HTTP/1.1 101 Switching Protocols   → promise succeeds
///   Upgrade: websocket, Sec-WebSocket-Key: …         Sec-WebSocket-Accept: …
///                                                  ← HTTP/1.1 400 Bad Request + body     → unexpectedResponse
///                                                  ← (closed, error, or nothing in time) → failure
/// ```
/// Any other answer than the upgrade reaches this handler as a plain HTTP response and fails the promise with
/// ``BrokerClientError/Code/unexpectedResponse``, its status and (up to ``maximumErrorBodyBytes`` of) its body, as
/// ``SSEClient`` reports a refused stream. A connection that closes or fails first, or a handshake that takes longer
/// than `timeout`, fails it too.
final class WebSocketHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart
    /// What the upgraded connection is read through: one `String` per text message.
    typealias Connection = NIOAsyncChannel<String, String>

    /// The most body bytes kept from an answer that is not the upgrade, for the error.
    static let maximumErrorBodyBytes = 64 * 1024

    private let head: HTTPRequestHead
    private let url: String
    private let timeout: Duration
    private let maximumMessageBytes: Int
    /// `nil` once completed.
    private var promise: EventLoopPromise<Connection>?
    private var timeoutTask: Scheduled<Void>?
    private var requestSent = false
    /// The answer that is not an upgrade, collected until its end.
    private var refusal: (head: HTTPResponseHead, body: ByteBuffer)?

    /// - Parameters:
    ///   - head: The `GET` request; the upgrade handler adds the WebSocket headers.
    ///   - url: The `ws://` URL, for error messages.
    ///   - timeout: The most the handshake may take from when this handler is added.
    ///   - maximumMessageBytes: Passed on to the ``WebSocketClientFrameHandler``.
    ///   - promise: Completed once, with the upgraded channel or the failure.
    init(
        head: HTTPRequestHead,
        url: String,
        timeout: Duration,
        maximumMessageBytes: Int,
        promise: EventLoopPromise<Connection>
    ) {
        self.head = head
        self.url = url
        self.timeout = timeout
        self.maximumMessageBytes = maximumMessageBytes
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.timeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(self.timeout)) {
            self.failHandshake(
                BrokerClientError(.timeout, "\(self.url) did not upgrade to a WebSocket within \(self.timeout)")
            )
            context.close(promise: nil)
        }
        if context.channel.isActive {
            self.sendRequest(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.failHandshake(BrokerClientError(.connectionClosed, "\(self.url) ended before the WebSocket upgrade"))
    }

    func channelActive(context: ChannelHandlerContext) {
        self.sendRequest(context: context)
        context.fireChannelActive()
    }

    private func sendRequest(context: ChannelHandlerContext) {
        guard !self.requestSent else { return }
        self.requestSent = true
        context.write(Self.wrapOutboundOut(.head(self.head)), promise: nil)
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.refusal = (head, context.channel.allocator.buffer(capacity: 0))
        case .body(var chunk):
            guard var refusal = self.refusal else { return }
            self.refusal = nil
            let room = Self.maximumErrorBodyBytes - refusal.body.readableBytes
            if room > 0, let bytes = chunk.readSlice(length: min(room, chunk.readableBytes)) {
                var bytes = bytes
                refusal.body.writeBuffer(&bytes)
            }
            self.refusal = refusal
        case .end:
            guard let refusal = self.refusal else { return }
            let status = Int(refusal.head.status.code)
            let contentType = refusal.head.headers.first(name: "Content-Type") ?? "no content type"
            self.failHandshake(
                BrokerClientError(
                    .unexpectedResponse,
                    "\(self.url) answered \(status) (\(contentType)) instead of upgrading to a WebSocket",
                    status: status,
                    body: String(buffer: refusal.body)
                )
            )
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case let error as BrokerClientError:
            self.failHandshake(error)
        case let error as NIOHTTPClientUpgradeError:
            self.failHandshake(
                BrokerClientError(
                    .unexpectedResponse,
                    "\(self.url) answered 101 without a valid WebSocket upgrade (\(error))"
                )
            )
        default:
            self.failHandshake(BrokerClientError(.connectionClosed, "Lost the connection to \(self.url) (\(error))"))
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.failHandshake(
            BrokerClientError(.connectionClosed, "\(self.url) closed the connection without answering the upgrade")
        )
        context.fireChannelInactive()
    }

    /// Called by the `NIOWebSocketClientUpgrader` once NIO's frame codec is in place: adds the frame handler and the
    /// async bridge behind it, hands the bridge to the promise and leaves the pipeline.
    func upgraded(channel: any Channel) throws {
        let operations = channel.pipeline.syncOperations
        try operations.addHandler(WebSocketClientFrameHandler(maximumMessageBytes: self.maximumMessageBytes))
        let connection = try Connection(wrappingChannelSynchronously: channel)
        self.timeoutTask?.cancel()
        self.promise?.succeed(connection)
        self.promise = nil
        operations.removeHandler(self, promise: nil)
    }

    private func failHandshake(_ error: BrokerClientError) {
        self.timeoutTask?.cancel()
        self.promise?.fail(error)
        self.promise = nil
    }
}

@available(*, unavailable)
extension WebSocketHandshakeHandler: Sendable {}
