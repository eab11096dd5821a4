import EventBroker
import Logging
import NIOCore
import NIOWebSocket

/// One WebSocket on `/api/ws`, after its upgrade: reads the client's frames (NIOWebSocket's decoder sits in front),
/// answers its JSON messages, and is the connection's `Subscriber` on the bus.
///
/// ```
/// → {"type":"connected","clientId":"…","topics":[…]}        (first, then the gap notice and replay, if resuming)
/// ← {"type":"subscribe","topics":["a"],"lastEventId":"…"}   → {"type":"ack","topics":["a"]}, then the replay
/// ← {"type":"publish","topic":"a","data":1,"ref":7}         → {"type":"ack","ref":7,"id":"…"}
/// → {"type":"event","topic":"a","data":1,"id":"…"}          (the frame encoded once per event, shared)
/// ```
/// Server frames are written as raw bytes (never masked), so an event's frame is the same buffer on every connection.
/// With `permessage-deflate` agreed, every text message goes out compressed (an event once per loop, shared by the
/// connections that agreed it) and compressed client messages are inflated, at most the message limit.
/// A bad message gets an `error` message and the connection stays; a protocol violation closes it with the
/// matching code: 1002 for an unmasked frame, reserved bits, an unknown opcode or a stray continuation, 1007 for a
/// text message that is not UTF-8, 1009 for a message over the limit.
///
/// Liveness: at each of its loop's heartbeats a connection the client has sent nothing on since the last one gets a
/// ping; if it still sends nothing (not even the pong) by the next heartbeat, it is closed.
///
/// Subscribing to more topics later replays their history after `lastEventId`, merged in id order with the deliveries
/// that were already queued for the connection, and without the events it already had: an event also on a topic the
/// connection was following since before that event is not replayed again. No gap, no duplicate.
/// Authorization: the handshake established the connection's principal. A `subscribe` to selectors its token does
/// not cover and a `publish` to a topic it does not grant get an `error` message (`forbidden`, or `missing_token`
/// without a token), private events reach it only when it may read them, and when its token expires it gets an
/// `error` message (`token_expired`) and is closed with 1008: the client reconnects with a fresh token and resumes.
/// Loop-confined: every method runs on the channel's event loop.
final class WebSocketHandler: ChannelInboundHandler, Subscriber {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = ByteBuffer

    /// A message whose frames have not all arrived.
    private struct PartialMessage {
        let isText: Bool
        let isCompressed: Bool
        var bytes: ByteBuffer
    }

    let clientID = ClientID.random()
    private let api: RESTAPI
    private var selectors: [TopicSelector]
    private let principal: Principal
    /// Closes the connection when its token expires; nil without a token or once closing.
    private var expiry: Scheduled<Void>?
    /// Needed only until the connection is subscribed.
    private var lastEventID: String?
    /// The display name presence shows (`?name=` on the upgrade URL); nil for the token's `sub`.
    private let name: String?
    private let maxMessageBytes: Int
    private let publishRate: PublishRateLimiter
    private let metrics: ServerMetrics
    /// The client's IP address, its key for the publish rate.
    private let clientAddress: String?
    /// The agreed `permessage-deflate` parameters and the server's compressors; nil when not agreed.
    private let deflate: (parameters: PerMessageDeflate.Parameters, compression: WebSocketCompression)?
    /// Inflates this client's compressed messages (its window may carry over from one message to the next).
    private var decompressor: PerMessageDeflateDecompressor?
    private let logger: Logger
    private var stateMachine: StreamStateMachine
    private var context: ChannelHandlerContext?
    private var isSubscribed = false
    private var isClosing = false
    /// The newest id delivered live (or skipped as not owed); older or equal deliveries are duplicates.
    private var lastLiveID = EventID.zero
    /// For each selector, the id after which every event it matches has been sent (live, or by a replay).
    private var coveredAfter: [TopicSelector: EventID] = [:]
    /// Deliveries made while the selectors change, to merge with the replay; nil otherwise.
    private var collected: [BrokerEvent]?
    /// Frames waiting for the socket (a replay, or anything while it is unwritable). Created when first needed.
    private var queue: CircularBuffer<(frame: ByteBuffer, isLive: Bool)>?
    private var hasUnflushedWrites = false
    private var message: PartialMessage?
    private var heardSinceHeartbeat = true
    private var isPingOutstanding = false

    private var broker: Broker { self.api.broker }

    /// - Parameters:
    ///   - selectors: Topics from the upgrade URL's `?topic=`, possibly none.
    ///   - lastEventID: Where those resume, from the upgrade URL.
    ///   - name: The display name from the upgrade URL's `?name=`.
    ///   - deflate: What the handshake agreed for `permessage-deflate`, with the server's compressors.
    ///   - maxMessageBytes: The largest message the client may send, across its fragments (and once inflated).
    init(
        api: RESTAPI, selectors: [TopicSelector], principal: Principal = .open, lastEventID: String?,
        name: String? = nil, deflate: (PerMessageDeflate.Parameters, WebSocketCompression)?, maxMessageBytes: Int,
        publishRate: PublishRateLimiter, clientAddress: String?, slowConsumerBytes: Int,
        metrics: ServerMetrics = ServerMetrics(), logger: Logger
    ) {
        self.metrics = metrics
        self.api = api
        self.selectors = selectors
        self.principal = principal
        self.lastEventID = lastEventID
        self.name = name
        self.deflate = deflate.map { (parameters: $0.0, compression: $0.1) }
        self.maxMessageBytes = maxMessageBytes
        self.publishRate = publishRate
        self.clientAddress = clientAddress
        self.logger = logger
        self.stateMachine = StreamStateMachine(queueLimit: max(1, slowConsumerBytes / 2))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guard context.channel.isActive else { return }
        if let deflate = self.deflate {
            do {
                self.decompressor = try PerMessageDeflateDecompressor(
                    parameters: deflate.parameters, allocator: context.channel.allocator)
            } catch {
                self.close(.unexpectedServerError, "Compression is unavailable.", context: context)
                return
            }
        }
        let start: SubscriptionStart
        do {
            start = try self.broker.subscribe0(
                self, selectors: self.selectors, lastEventID: self.selectors.isEmpty ? nil : self.lastEventID,
                transport: .webSocket, principal: self.principal, name: self.name, on: context.eventLoop)
        } catch {
            _ = self.stateMachine.shouldQuiesce()
            self.close(.goingAway, "The broker is shutting down; reconnect shortly.", context: context)
            return
        }
        self.isSubscribed = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.expiry = TokenExpiry.schedule(for: self.principal, on: context.eventLoop) {
            bound.value.tokenExpired()
        }
        // Before the state machine starts, so straight to the socket: nothing can be queued yet.
        context.write(
            Self.wrapOutboundOut(
                self.textFrame(
                    WebSocketReply.connected(
                        clientID: self.clientID, name: self.name ?? self.principal.userID, topics: self.selectors),
                    context: context)),
            promise: nil)
        if let gap = start.gap {
            context.write(Self.wrapOutboundOut(self.textFrame(WebSocketReply.gap(gap), context: context)), promise: nil)
        }
        self.lastLiveID = start.handoffID
        let covered = Self.coverageStart(lastEventID: self.lastEventID, handoffID: start.handoffID)
        for selector in self.selectors { self.coveredAfter[selector] = covered }
        self.lastEventID = nil
        self.queueReplay(start.replay, context: context)
        self.stateMachine.started(isWritable: context.channel.isWritable, queuedReplay: start.replay.count)
        self.drainQueue(context: context)
        self.logger.debug(
            "WebSocket connected",
            metadata: ["client.id": "\(self.clientID)", "topics": "\(self.selectors.map(\.value))"])
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.unsubscribe(context: context)
        self.context = nil
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
            case .endStream: self.close(.goingAway, "The broker is shutting down.", context: context)
            case .none: break
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error as? NIOWebSocketError {
        case .invalidFrameLength?:
            self.close(.messageTooLarge, "A frame is larger than \(self.maxMessageBytes) bytes.", context: context)
        case .fragmentedControlFrame?, .multiByteControlFrameLength?:
            self.close(.protocolError, "Control frames must be whole and at most 125 bytes.", context: context)
        case nil:
            self.logger.debug(
                "WebSocket failed", metadata: ["client.id": "\(self.clientID)", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        self.heardSinceHeartbeat = true
        guard !self.isClosing else { return }
        guard frame.maskKey != nil else {
            return self.close(.protocolError, "Client frames must be masked.", context: context)
        }
        guard !frame.rsv2, !frame.rsv3 else {
            return self.close(.protocolError, "RSV2 and RSV3 must be clear.", context: context)
        }
        // RSV1 marks a compressed message, on its first frame only (RFC 7692 §6).
        guard !frame.rsv1 || (self.deflate != nil && (frame.opcode == .text || frame.opcode == .binary)) else {
            return self.close(
                .protocolError, "RSV1 is set on a frame that cannot carry it (or no compression was agreed).",
                context: context)
        }
        switch frame.opcode {
        case .text, .binary:
            guard self.message == nil else {
                return self.close(
                    .protocolError, "A new message began before the last one's final fragment.", context: context)
            }
            self.message = PartialMessage(
                isText: frame.opcode == .text, isCompressed: frame.rsv1, bytes: frame.unmaskedData)
            self.messageGrew(final: frame.fin, context: context)
        case .continuation:
            guard self.message != nil else {
                return self.close(.protocolError, "A continuation frame came without a message.", context: context)
            }
            var fragment = frame.unmaskedData
            self.message!.bytes.writeBuffer(&fragment)
            self.messageGrew(final: frame.fin, context: context)
        case .ping:
            self.writeControl(opcode: 0xA, payload: frame.unmaskedData, context: context)
        case .pong:
            break
        case .connectionClose:
            self.closeRequested(frame.unmaskedData, context: context)
        default:
            self.close(.protocolError, "Unknown opcode.", context: context)
        }
    }

    private func messageGrew(final: Bool, context: ChannelHandlerContext) {
        guard let message = self.message else { return }
        guard message.bytes.readableBytes <= self.maxMessageBytes else {
            self.message = nil
            return self.close(
                .messageTooLarge, "A message may be at most \(self.maxMessageBytes) bytes.", context: context)
        }
        guard final else { return }
        self.message = nil
        var bytes = message.bytes
        if message.isCompressed {
            do {
                bytes = try self.decompressor!.decompress(message.bytes, maxBytes: self.maxMessageBytes)
            } catch {
                switch error {
                case .messageTooLarge:
                    return self.close(
                        .messageTooLarge, "A message may be at most \(self.maxMessageBytes) bytes once inflated.",
                        context: context)
                case .corruptData:
                    return self.close(
                        .dataInconsistentWithMessage, "A compressed message is not valid DEFLATE data.",
                        context: context)
                case .zlibFailure:
                    return self.close(.unexpectedServerError, "Decompression failed.", context: context)
                }
            }
        }
        guard message.isText else {
            let error = APIError(.badRequest, "unsupported_data", "Send text messages: one JSON object each.")
            return self.write(WebSocketReply.error(error, ref: nil), context: context)
        }
        guard let text = String(validating: bytes.readableBytesView, as: UTF8.self) else {
            return self.close(.dataInconsistentWithMessage, "A text message is not valid UTF-8.", context: context)
        }
        self.handle(WebSocketMessage.decode(text), context: context)
    }

    private func closeRequested(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        var payload = payload
        guard payload.readableBytes >= 2, let code = payload.readInteger(as: UInt16.self) else {
            return self.close(.normalClosure, "", context: context)
        }
        // Codes a peer may send (RFC 6455 §7.4); anything else is a protocol error.
        let isValid =
            (1000...1011).contains(code) && ![1004, 1005, 1006].contains(code) || (3000...4999).contains(code)
        guard isValid, String(validating: payload.readableBytesView, as: UTF8.self) != nil else {
            return self.close(.protocolError, "The close frame's code or reason is invalid.", context: context)
        }
        self.close(WebSocketErrorCode(codeNumber: Int(code)), "", context: context)
    }

    // MARK: Messages

    private func handle(_ message: WebSocketMessage, context: ChannelHandlerContext) {
        let request: WebSocketMessage.Request
        switch message.request {
        case .success(let success): request = success
        case .failure(let error): return self.write(WebSocketReply.error(error, ref: message.ref), context: context)
        }
        switch request {
        case .ping:
            self.write(WebSocketReply.pong(ref: message.ref), context: context)
        case .publish(let fields):
            let client = self.principal.userID.map { "sub:\($0)" } ?? self.clientAddress ?? "-"
            if let wait = self.publishRate.acquire(client: client) {
                self.metrics.refused(.rateLimited)
                return self.write(
                    WebSocketReply.error(ServerLimits.rateLimited(retryAfter: wait), ref: message.ref),
                    context: context)
            }
            let published: EventLoopFuture<PublishResult>
            do {
                published = try self.api.publish(
                    fields, idempotencyKey: nil, principal: self.principal, on: context.eventLoop)
            } catch {
                self.countRefusal(error)
                return self.write(WebSocketReply.error(error, ref: message.ref), context: context)
            }
            // At once without a store; after the commit with one.
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let ref = message.ref
            published.whenComplete { result in
                let handler = bound.value
                guard let context = handler.context, !handler.isClosing else { return }
                switch result {
                case .success(let result):
                    handler.write(WebSocketReply.ack(ref: ref, id: result.id), context: context)
                case .failure(let error):
                    handler.write(WebSocketReply.error(APIError(publishFailure: error), ref: ref), context: context)
                }
            }
        case .subscribe(let selectors, let lastEventID):
            do {
                try RESTAPI.authorize { () throws(AuthorizationError) in
                    try self.principal.authorizeSubscribe(to: selectors)
                }
            } catch {
                self.countRefusal(error)
                return self.write(WebSocketReply.error(error, ref: message.ref), context: context)
            }
            let added = selectors.filter { !self.selectors.contains($0) }
            self.changeSelectors(
                to: self.selectors + added, replaying: added, after: lastEventID, ref: message.ref, context: context)
        case .unsubscribe(let selectors):
            self.changeSelectors(
                to: self.selectors.filter { !selectors.contains($0) }, replaying: [], after: nil, ref: message.ref,
                context: context)
        }
    }

    private func changeSelectors(
        to new: [TopicSelector], replaying added: [TopicSelector], after lastEventID: String?, ref: JSONValue?,
        context: ChannelHandlerContext
    ) {
        let old = self.selectors
        let start: SubscriptionStart
        self.collected = []
        do {
            start = try self.broker.changeSelectors0(
                self, from: old, to: new, replaying: added, after: lastEventID, readableBy: self.principal,
                on: context.eventLoop)
        } catch {
            self.collected = nil
            return self.write(WebSocketReply.error(APIError(error), ref: ref), context: context)
        }
        let collected = self.collected ?? []
        self.collected = nil
        // What the old selectors already sent (or just collected) is not replayed again.
        let replay = start.replay.filter { event in
            !old.contains { selector in
                event.id > (self.coveredAfter[selector] ?? .zero) && event.topics.contains(where: selector.matches)
            }
        }
        let covered = Self.coverageStart(lastEventID: lastEventID, handoffID: start.handoffID)
        for selector in added { self.coveredAfter[selector] = covered }
        for selector in old where !new.contains(selector) { self.coveredAfter[selector] = nil }
        self.selectors = new
        self.write(WebSocketReply.ack(ref: ref, topics: new), context: context)
        if let gap = start.gap { self.write(WebSocketReply.gap(gap), context: context) }
        let merged = Self.merge(collected, replay)
        guard !merged.isEmpty else { return }
        self.queueReplay(merged, context: context)
        switch self.stateMachine.replayQueued(events: merged.count) {
        case .drainQueue: self.drainQueue(context: context)
        case .none: break
        }
    }

    private func countRefusal(_ error: APIError) {
        guard error.status == .unauthorized || error.status == .forbidden else { return }
        self.metrics.refused(error.status == .forbidden ? .forbidden : .unauthorized)
        self.logger.info(
            "WebSocket request refused",
            metadata: ["client.id": "\(self.clientID)", "code": "\(error.code)", "reason": "\(error.message)"])
    }

    /// The token has expired: an `error` message saying so, then a 1008 close.
    private func tokenExpired() {
        self.expiry = nil
        guard let context = self.context, !self.isClosing else { return }
        self.logger.info("Token expired: closing WebSocket", metadata: ["client.id": "\(self.clientID)"])
        self.queue = nil
        let error = APIError(
            AuthorizationError(
                .tokenExpired, "The connection's token expired; reconnect with a fresh one and the last event id."))
        self.write(WebSocketReply.error(error, ref: nil), context: context)
        self.close(.policyViolation, "The token expired.", context: context)
    }

    /// After which id a selector's events are all sent, once it is subscribed with `lastEventID` at `handoffID`:
    /// the handoff for live only, the resume id when history was replayed from it, or 0 when the id was not one
    /// the broker issued (everything retained was replayed).
    private static func coverageStart(lastEventID: String?, handoffID: EventID) -> EventID {
        guard let lastEventID else { return handoffID }
        guard let id = EventID(parsing: lastEventID), id <= handoffID else { return .zero }
        return id
    }

    /// Two id-ordered lists without common ids, merged in id order.
    private static func merge(_ first: [BrokerEvent], _ second: [BrokerEvent]) -> [BrokerEvent] {
        guard !first.isEmpty else { return second }
        guard !second.isEmpty else { return first }
        var merged: [BrokerEvent] = []
        merged.reserveCapacity(first.count + second.count)
        var (i, j) = (0, 0)
        while i < first.count || j < second.count {
            if j == second.count || (i < first.count && first[i].id < second[j].id) {
                merged.append(first[i])
                i += 1
            } else {
                merged.append(second[j])
                j += 1
            }
        }
        return merged
    }

    // MARK: Delivering

    /// Hot path. The event's frame is shared by every WebSocket on this loop: never mutate it.
    func deliver(_ event: BrokerEvent) -> Delivery {
        guard let context = self.context, !self.isClosing, event.id > self.lastLiveID else { return .skipped }
        self.lastLiveID = event.id
        guard !event.isPrivate || self.principal.mayRead(event) else { return .skipped }
        if self.collected != nil {
            self.collected!.append(event)
            return .written
        }
        let frame = self.eventFrame(event, context: context)
        switch self.stateMachine.eventPublished(bytes: frame.readableBytes) {
        case .write:
            context.write(Self.wrapOutboundOut(frame), promise: nil)
            defer { self.hasUnflushedWrites = true }
            return self.hasUnflushedWrites ? .written : .firstUnflushedWrite
        case .enqueue:
            self.enqueue(frame, isLive: true)
            return .written
        case .closeSlowConsumer:
            self.closeSlowConsumer(context: context)
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
        guard let context = self.context, !self.isClosing else { return }
        if self.heardSinceHeartbeat {
            self.heardSinceHeartbeat = false
            self.isPingOutstanding = false
            return
        }
        if self.isPingOutstanding {
            self.logger.info("Closing unresponsive WebSocket", metadata: ["client.id": "\(self.clientID)"])
            self.isClosing = true
            self.unsubscribe(context: context)
            context.close(promise: nil)
            return
        }
        switch self.stateMachine.heartbeatDue() {
        case .write:
            self.isPingOutstanding = true
            self.writeControl(opcode: 0x9, payload: ByteBuffer(), context: context)
        case .none:
            break
        }
    }

    // MARK: Writing

    /// Sends one text message, in order behind anything queued.
    private func write(_ text: String, context: ChannelHandlerContext) {
        let frame = self.textFrame(text, context: context)
        switch self.stateMachine.eventPublished(bytes: frame.readableBytes) {
        case .write:
            self.hasUnflushedWrites = false
            context.writeAndFlush(Self.wrapOutboundOut(frame), promise: nil)
        case .enqueue:
            self.enqueue(frame, isLive: true)
        case .closeSlowConsumer:
            self.closeSlowConsumer(context: context)
        case .none:
            break
        }
    }

    /// The event's frame for this connection: the shared plain one, or the loop's shared compressed one.
    private func eventFrame(_ event: BrokerEvent, context: ChannelHandlerContext) -> ByteBuffer {
        guard let deflate = self.deflate else { return event.webSocketFrame(allocator: context.channel.allocator) }
        return deflate.compression.eventFrame0(
            event, windowBits: deflate.parameters.serverMaxWindowBits, on: context.eventLoop)
    }

    private func textFrame(_ text: String, context: ChannelHandlerContext) -> ByteBuffer {
        if let deflate = self.deflate {
            return deflate.compression.textFrame0(
                ByteBuffer(string: text), windowBits: deflate.parameters.serverMaxWindowBits, on: context.eventLoop)
        }
        return WebSocketEventFrame.frame(
            opcode: 0x1, payload: ByteBuffer(string: text), allocator: context.channel.allocator)
    }

    /// Control frames may go between a message's frames, so they skip the queue.
    private func writeControl(opcode: UInt8, payload: ByteBuffer, context: ChannelHandlerContext) {
        let frame = WebSocketEventFrame.frame(opcode: opcode, payload: payload, allocator: context.channel.allocator)
        self.hasUnflushedWrites = false
        context.writeAndFlush(Self.wrapOutboundOut(frame), promise: nil)
    }

    private func enqueue(_ frame: ByteBuffer, isLive: Bool) {
        self.queue = self.queue ?? CircularBuffer(initialCapacity: 16)
        self.queue!.append((frame, isLive))
    }

    private func queueReplay(_ events: [BrokerEvent], context: ChannelHandlerContext) {
        for event in events {
            self.enqueue(self.eventFrame(event, context: context), isLive: false)
        }
    }

    private func drainQueue(context: ChannelHandlerContext) {
        var frames = 0
        var liveBytes = 0
        while context.channel.isWritable, let next = self.queue?.popFirst() {
            context.write(Self.wrapOutboundOut(next.frame), promise: nil)
            frames += 1
            if next.isLive { liveBytes += next.frame.readableBytes }
        }
        if self.queue?.isEmpty == true { self.queue = nil }
        self.hasUnflushedWrites = false
        context.flush()
        self.stateMachine.drained(events: frames, liveBytes: liveBytes, isWritable: context.channel.isWritable)
    }

    private func closeSlowConsumer(context: ChannelHandlerContext) {
        self.metrics.slowConsumerCut(.webSocket)
        self.logger.info(
            "Closing slow consumer",
            metadata: ["client.id": "\(self.clientID)", "queued.frames": "\(self.queue?.count ?? 0)"])
        self.queue = nil
        self.isClosing = true
        self.unsubscribe(context: context)
        context.close(promise: nil)
    }

    /// Sends a close frame with `code` and `reason` (ahead of anything queued), then closes the connection.
    private func close(_ code: WebSocketErrorCode, _ reason: String, context: ChannelHandlerContext) {
        guard !self.isClosing else { return }
        self.isClosing = true
        self.queue = nil
        self.message = nil
        self.unsubscribe(context: context)
        var payload = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        payload.writeInteger(UInt16(webSocketErrorCode: code))
        payload.writeString(String(reason.utf8.prefix(123)) ?? "")
        let frame = WebSocketEventFrame.frame(opcode: 0x8, payload: payload, allocator: context.channel.allocator)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(Self.wrapOutboundOut(frame)).whenComplete { _ in bound.value.close(promise: nil) }
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
extension WebSocketHandler: Sendable {}
