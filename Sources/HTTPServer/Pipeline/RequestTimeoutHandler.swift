import NIOCore

/// Bounds how long a connection may take to send a request, and how long it may sit idle between requests.
///
/// First in the HTTP pipeline, it sees raw bytes. The first byte of a request starts the request deadline; the
/// request handler reports when the request has fully arrived and when its response is done. A request that is not
/// complete by the deadline (a slowloris, a stalled upload) gets a `408` and the connection is closed; an idle
/// keep-alive connection is simply closed. Both are timers on the loop: no thread is held.
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
    /// When the current state's time runs out; nil while processing.
    private var deadline: NIODeadline?
    /// One timer at most, re-armed lazily: moving a deadline later (the common case, once per request) costs
    /// nothing; the timer notices when it fires and sleeps again until the new deadline.
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var context: ChannelHandlerContext?

    init(requestTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { self.enter(.idle) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.cancelTimer()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.enter(.idle)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.cancelTimer()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .idle = self.state { self.enter(.reading) }
        context.fireChannelRead(data)
    }

    /// A request head was decoded (possibly one that was buffered behind an earlier request).
    func requestStarted() {
        if case .reading = self.state { return }
        self.enter(.reading)
    }

    /// The request has fully arrived: no deadline while the broker works on it.
    func requestCompleted() {
        self.enter(.processing)
    }

    /// The response has been written: the connection is idle until the next request.
    func responseCompleted() {
        if case .processing = self.state { self.enter(.idle) }
    }

    private func enter(_ state: State) {
        self.state = state
        switch state {
        case .idle: self.deadline = .now() + self.idleTimeout
        case .reading: self.deadline = .now() + self.requestTimeout
        case .processing: self.deadline = nil
        }
        guard let deadline = self.deadline else { return }
        if let scheduled = self.timerDeadline, scheduled <= deadline { return }
        self.schedule(at: deadline)
    }

    private func schedule(at deadline: NIODeadline) {
        guard let context = self.context else { return }
        self.timer?.cancel()
        self.timerDeadline = deadline
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(deadline: deadline) { bound.value.fire() }
    }

    private func cancelTimer() {
        self.timer?.cancel()
        self.timer = nil
        self.timerDeadline = nil
    }

    private func fire() {
        self.timer = nil
        self.timerDeadline = nil
        guard let context = self.context, let deadline = self.deadline else { return }
        if deadline > .now() {
            self.schedule(at: deadline)
            return
        }
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
