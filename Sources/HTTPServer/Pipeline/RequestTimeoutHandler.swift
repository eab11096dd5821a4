import NIOCore

/// Bounds how long a connection may take to send a request, and how long it may sit idle between requests.
///
/// First in the HTTP pipeline, it sees raw bytes. The first byte of a request starts the request deadline; the
/// request handler reports when the request has fully arrived and when its response is done. A request that is not
/// complete by the deadline (a slowloris, a stalled upload) gets a `408` and the connection is closed; an idle
/// keep-alive connection is simply closed. Both are timers on the loop: no thread is held.
///
/// It also relays `ChannelShouldQuiesceEvent` to `onQuiesce`, because the pipelining handler further down holds
/// that event back while a response (a long poll) is pending.
final class RequestTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case idle
        case reading
        case processing
    }

    static let timeoutResponse: ByteBuffer = {
        let body = APIError(.requestTimeout, "request_timeout", "The request did not arrive in time.").jsonBody
        return ByteBuffer(
            string:
                "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        )
    }()

    private let requestTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private var state = State.idle
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    var onQuiesce: (() -> Void)?

    init(requestTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { self.arm(.idle) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        self.context = nil
        self.onQuiesce = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.arm(.idle)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .idle = self.state { self.arm(.reading) }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent { self.onQuiesce?() }
        context.fireUserInboundEventTriggered(event)
    }

    /// A request head was decoded (possibly one that was buffered behind an earlier request).
    func requestStarted() {
        if case .reading = self.state { return }
        self.arm(.reading)
    }

    /// The request has fully arrived: no deadline while the broker works on it.
    func requestCompleted() {
        self.arm(.processing)
    }

    /// The response has been written: the connection is idle until the next request.
    func responseCompleted() {
        if case .processing = self.state { self.arm(.idle) }
    }

    private func arm(_ state: State) {
        self.state = state
        self.timer?.cancel()
        self.timer = nil
        guard let context = self.context else { return }
        let delay: TimeAmount
        switch state {
        case .idle: delay = self.idleTimeout
        case .reading: delay = self.requestTimeout
        case .processing: return
        }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(in: delay) { bound.value.fire() }
    }

    private func fire() {
        guard let context = self.context else { return }
        self.timer = nil
        switch self.state {
        case .reading:
            context.writeAndFlush(Self.wrapOutboundOut(Self.timeoutResponse), promise: nil)
            context.close(promise: nil)
        case .idle:
            context.close(promise: nil)
        case .processing:
            break
        }
    }
}

@available(*, unavailable)
extension RequestTimeoutHandler: Sendable {}
