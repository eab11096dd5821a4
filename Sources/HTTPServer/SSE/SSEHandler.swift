import EventBroker
import Logging
import NIOCore

/// One Server-Sent Events stream. Takes over the connection once its `GET /api/events` has ended: it takes the place
/// of the HTTP handlers (behind TLS, if the server has it), writes raw bytes (the response head, then pre-encoded
/// chunks), and ignores anything the client sends afterwards.
///
/// ```
/// HTTP/1.1 200 OK ... Transfer-Encoding: chunked      (head, with CORS headers for this request)
/// retry: 3000 / event: connected / data: {"clientId":…,"topics":[…]}
/// event: gap / data: {"lastEventId":…,"oldestAvailable":…}     (only when resuming past the history's reach)
/// id: … / data: …                                          (replay, then live events)
/// : hb                                                     (every heartbeat interval)
/// event: token_expired / data: {"code":…,"message":…}     (last, when the stream's token expires)
/// ```
/// Private events reach the stream only when its principal may read them (see `Principal.mayRead`).
/// Loop-confined: every method runs on the channel's event loop.
final class SSEHandler: ChannelDuplexHandler, Subscriber {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let clientID = ClientID.random()
    private let broker: Broker
    private let selectors: [TopicSelector]
    private let principal: Principal
    /// Ends the stream when its token expires; nil without a token or once the stream ended.
    private var expiry: Scheduled<Void>?
    /// Needed only until the stream starts; then released, to keep an idle stream small.
    private var lastEventID: String?
    /// The display name presence shows (`?name=`); nil for the token's `sub`.
    private let name: String?
    private var responseHead: ByteBuffer
    private let metrics: ServerMetrics
    private let logger: Logger
    private var stateMachine: StreamStateMachine
    private var context: ChannelHandlerContext?
    private var isSubscribed = false
    /// The newest id written (or skipped as already written); older or equal deliveries are duplicates.
    private var lastDeliveredID = EventID.zero
    /// Events waiting for the socket (the replay, or live events while it is unwritable). Created when first needed:
    /// most streams never queue anything.
    private var queue: CircularBuffer<(event: BrokerEvent, isLive: Bool)>?
    /// `deliver` wrote without flushing; the shard calls `flush` at the end of its batch.
    private var hasUnflushedWrites = false

    init(
        broker: Broker, selectors: [TopicSelector], principal: Principal = .open, lastEventID: String?,
        name: String? = nil, responseHead: ByteBuffer, slowConsumerBytes: Int, metrics: ServerMetrics = ServerMetrics(),
        logger: Logger
    ) {
        self.broker = broker
        self.principal = principal
        self.metrics = metrics
        self.selectors = selectors
        self.lastEventID = lastEventID
        self.name = name
        self.responseHead = responseHead
        self.logger = logger
        self.stateMachine = StreamStateMachine(queueLimit: max(1, slowConsumerBytes / 2))
    }

    /// The response head, built once per stream because CORS headers depend on the request.
    static func responseHead(extraHeaders: [(String, String)]) -> ByteBuffer {
        var head = ByteBuffer(
            string:
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n"
        )
        for (name, value) in extraHeaders {
            head.writeString(name)
            head.writeStaticString(": ")
            head.writeString(value)
            head.writeStaticString("\r\n")
        }
        head.writeStaticString("\r\n")
        return head
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guard context.channel.isActive else { return }
        let start: SubscriptionStart
        do {
            start = try self.broker.subscribe0(
                self, selectors: self.selectors, lastEventID: self.lastEventID, transport: .sse,
                principal: self.principal, name: self.name, on: context.eventLoop)
        } catch {
            // Shutting down: a retryable refusal, so the browser reconnects (elsewhere or later).
            _ = self.stateMachine.shouldQuiesce()
            self.writeRetryHintAndClose(context: context)
            return
        }
        self.isSubscribed = true
        self.lastEventID = nil
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.expiry = TokenExpiry.schedule(for: self.principal, on: context.eventLoop) {
            bound.value.tokenExpired()
        }
        context.write(Self.wrapOutboundOut(self.responseHead), promise: nil)
        self.responseHead = ByteBuffer()
        var connected = JSONObjectWriter()
        connected.string("clientId", self.clientID.rawValue)
        connected.strings("topics", self.selectors.map(\.value))
        connected.string("name", self.name ?? self.principal.userID)
        context.write(
            Self.wrapOutboundOut(
                SSEFrame.control(
                    event: "connected", data: connected.finish(), retry: self.broker.configuration.retryMilliseconds,
                    allocator: context.channel.allocator)), promise: nil)
        if let gap = start.gap {
            var data = JSONObjectWriter()
            data.string("lastEventId", gap.lastEventID)
            data.string("oldestAvailable", gap.oldestAvailable?.description)
            context.write(
                Self.wrapOutboundOut(
                    SSEFrame.control(event: "gap", data: data.finish(), allocator: context.channel.allocator)),
                promise: nil)
        }
        if !start.replay.isEmpty {
            var queue = CircularBuffer<(event: BrokerEvent, isLive: Bool)>(initialCapacity: start.replay.count)
            for event in start.replay { queue.append((event, false)) }
            self.queue = queue
        }
        self.lastDeliveredID = start.handoffID
        self.stateMachine.started(isWritable: context.channel.isWritable, queuedReplay: start.replay.count)
        self.drainQueue(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.unsubscribe(context: context)
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The request has ended; a client has nothing more to say on an event stream.
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.stateMachine.channelClosed()
        self.unsubscribe(context: context)
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        switch self.stateMachine.writabilityChanged(isWritable: context.channel.isWritable) {
        case .drainQueue: self.drainQueue(context: context)
        case .none: break
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            switch self.stateMachine.shouldQuiesce() {
            case .endStream: self.writeRetryHintAndClose(context: context)
            case .none: break
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("SSE stream failed", metadata: ["client.id": "\(self.clientID)", "error": "\(error)"])
        context.close(promise: nil)
    }

    /// Hot path. `event.sseChunk` is shared by every subscriber on this loop: never mutate it.
    func deliver(_ event: BrokerEvent) -> Delivery {
        // `isPrivate` first: a public event, nearly every one, costs one load, not a call.
        guard let context = self.context, event.id > self.lastDeliveredID,
            !event.isPrivate || self.principal.mayRead(event)
        else {
            return .skipped
        }
        self.lastDeliveredID = event.id
        switch self.stateMachine.eventPublished(bytes: event.sseChunk.readableBytes) {
        case .write:
            context.write(Self.wrapOutboundOut(event.sseChunk), promise: nil)
            defer { self.hasUnflushedWrites = true }
            return self.hasUnflushedWrites ? .written : .firstUnflushedWrite
        case .enqueue:
            self.queue = self.queue ?? CircularBuffer(initialCapacity: 16)
            self.queue!.append((event, true))
            return .written
        case .closeSlowConsumer:
            self.logger.info(
                "Closing slow consumer",
                metadata: ["client.id": "\(self.clientID)", "queued.events": "\(self.queue?.count ?? 0)"])
            self.queue = nil
            self.metrics.slowConsumerCut(.sse)
            context.close(promise: nil)
        case .none:
            break
        }
        return .skipped
    }

    func flush() {
        guard self.hasUnflushedWrites, let context = self.context else { return }
        self.hasUnflushedWrites = false
        context.flush()
    }

    func heartbeat() {
        guard let context = self.context else { return }
        switch self.stateMachine.heartbeatDue() {
        case .write: context.writeAndFlush(Self.wrapOutboundOut(SSEFrame.heartbeat), promise: nil)
        case .none: break
        }
    }

    private func drainQueue(context: ChannelHandlerContext) {
        var events = 0
        var liveBytes = 0
        while context.channel.isWritable, let next = self.queue?.popFirst() {
            context.write(Self.wrapOutboundOut(next.event.sseChunk), promise: nil)
            events += 1
            if next.isLive { liveBytes += next.event.sseChunk.readableBytes }
        }
        if self.queue?.isEmpty == true { self.queue = nil }
        self.hasUnflushedWrites = false
        context.flush()
        self.stateMachine.drained(events: events, liveBytes: liveBytes, isWritable: context.channel.isWritable)
    }

    /// The token has expired: a last frame saying so, then the stream ends. The client reconnects with a fresh token
    /// and its last event id (a browser's `EventSource` would retry with the expired one, and stop at the `401`).
    private func tokenExpired() {
        self.expiry = nil
        guard let context = self.context, self.isSubscribed else { return }
        self.logger.info("Token expired: ending stream", metadata: ["client.id": "\(self.clientID)"])
        self.queue = nil
        var data = JSONObjectWriter()
        data.string("code", "token_expired")
        data.string("message", "The stream's token expired; reconnect with a fresh one and the last event id.")
        context.write(
            Self.wrapOutboundOut(
                SSEFrame.control(event: "token_expired", data: data.finish(), allocator: context.channel.allocator)),
            promise: nil)
        self.unsubscribe(context: context)
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(Self.wrapOutboundOut(SSEFrame.lastChunk)).whenComplete { _ in
            boundContext.value.close(promise: nil)
        }
    }

    private func writeRetryHintAndClose(context: ChannelHandlerContext) {
        if !self.isSubscribed {
            context.write(Self.wrapOutboundOut(self.responseHead), promise: nil)
        }
        self.queue = nil
        context.write(
            Self.wrapOutboundOut(SSEFrame.retryHint(milliseconds: 1000, allocator: context.channel.allocator)),
            promise: nil)
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(Self.wrapOutboundOut(SSEFrame.lastChunk)).whenComplete { _ in
            boundContext.value.close(promise: nil)
        }
        self.unsubscribe(context: context)
    }

    private func unsubscribe(context: ChannelHandlerContext) {
        self.expiry?.cancel()
        self.expiry = nil
        guard self.isSubscribed else { return }
        self.isSubscribed = false
        self.broker.unsubscribe0(self, selectors: self.selectors, on: context.eventLoop)
    }
}

@available(*, unavailable)
extension SSEHandler: Sendable {}
