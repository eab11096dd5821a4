import EventBroker
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Reads each request from the received bytes (with `HTTPRequestParser`), enforces the size limits, routes it and
/// writes the answer; hands `GET /api/events` over to an `SSEHandler` and holds long polls open.
///
/// Errors that leave the request body unread (`413`, and a `404` or `405` for a client waiting for
/// `100 Continue`) close the connection after the answer; every other error is answered once the request has ended
/// and the connection stays usable. A client that sends `Expect: 100-continue` and holds its body back gets
/// `100 Continue` once its head is accepted. A request the parser cannot read gets a JSON `400` (`431` for an
/// oversized head) and the connection is closed.
///
/// Answers are written whole, in request order: the bytes of a request pipelined behind a long poll or a publish
/// stay unparsed in `received` until that answer is out. On `ChannelShouldQuiesceEvent` an idle connection closes at
/// once, a busy one after its answer, and a long poll answers immediately.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The body of a request without one; a body's first part replaces it.
    private static let emptyBody = ByteBufferAllocator().buffer(capacity: 0)

    private struct Request {
        let head: HTTPRequestHead
        let target: RequestTarget
        let match: Router.Match
        var body: ByteBuffer
    }

    private struct LongPoll {
        let request: Request
        let query: RESTAPI.HistoryQuery
        let principal: Principal
        let waiter: LongPollWaiter
        let timer: Scheduled<Void>
    }

    private enum State {
        case idle
        /// Reading the request in `request`.
        case collecting
        /// The request is refused; its answer goes out when it ends.
        case refused(HTTPRequestHead, APIError)
        /// An answer that closes the connection went out early; the rest of the request is ignored.
        case discarding
        case waiting(LongPoll)
        /// A publish waits for the broker (with a durable store, for its commit); later requests wait behind it.
        case publishing(HTTPRequestHead)
        case handedOff
    }

    private let api: RESTAPI
    private let configuration: BrokerConfiguration
    private let cors: CORSPolicy
    private let authenticator: RequestAuthenticator
    private let pipelineHandlers: HTTPPipeline.Handlers
    private let webSocketCompression: WebSocketCompression
    private let limits: ServerLimits
    private let metrics: ServerMetrics
    /// Set when the connection is over a limit: its first request gets this refusal, and it closes.
    private let connectionRefusal: ConnectionLimiter.Refusal?
    /// The client's IP address: its key for connection and publish limits.
    private let clientAddress: String?
    private let logger: Logger
    private var state = State.idle
    /// The request being read while `collecting`. Kept beside the state, not in it, so its body grows in place and
    /// it moves out to be dispatched without being copied (and every reference in it retained and released).
    private var request: Request?
    private var isQuiescing = false
    private var context: ChannelHandlerContext?
    private var parser: HTTPRequestParser
    /// Bytes received and not parsed yet: the start of a head, or requests pipelined behind a pending answer. Nil
    /// when everything was parsed, so the channel can reuse its receive buffer.
    private var received: ByteBuffer?
    /// The most bytes kept unparsed behind a pending answer before the connection is closed.
    private let maxPipelinedBytes: Int
    /// The last answer's bytes, reused for the next answer on this connection once the socket has written them, so
    /// a keep-alive client's answers cost no allocation. Only a small one is kept: a connection's idle memory stays
    /// small whatever it once asked for.
    private var responseBuffer: ByteBuffer?
    private static let maxKeptResponseBytes = 1024

    init(
        api: RESTAPI, configuration: BrokerConfiguration, pipelineHandlers: HTTPPipeline.Handlers,
        limits: ServerLimits, connectionRefusal: ConnectionLimiter.Refusal?, clientAddress: String?,
        webSocketCompression: WebSocketCompression, metrics: ServerMetrics, logger: Logger
    ) {
        self.metrics = metrics
        self.api = api
        self.configuration = configuration
        self.cors = CORSPolicy(allowedOrigins: configuration.corsAllowedOrigins)
        self.parser = HTTPRequestParser(limits: HTTPPipeline.parserLimits(configuration))
        self.maxPipelinedBytes = configuration.maxBodyBytes + 2 * configuration.maxHeaderBytes
        self.authenticator = RequestAuthenticator(configuration)
        self.pipelineHandlers = pipelineHandlers
        self.webSocketCompression = webSocketCompression
        self.limits = limits
        self.connectionRefusal = connectionRefusal
        self.clientAddress = clientAddress
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.abandonLongPoll(context: context)
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.abandonLongPoll(context: context)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = Self.unwrapInboundIn(data)
        if var received = self.received {
            self.received = nil  // so the append does not copy
            received.writeBuffer(&bytes)
            self.received = received
        } else {
            self.received = bytes
        }
        if self.isWaiting, let received = self.received, received.readableBytes > self.maxPipelinedBytes {
            self.logger.debug("Too many bytes pipelined behind a pending answer; closing")
            context.close(promise: nil)
            return
        }
        self.parseReceived(context: context)
    }

    /// Parses and handles the received requests, as long as nothing is pending and the connection is still HTTP.
    private func parseReceived(context: ChannelHandlerContext) {
        while self.context != nil, self.isReading {
            let part: HTTPServerRequestPart
            if let end = self.parser.pendingEnd() {
                part = end
            } else {
                guard var bytes = self.received else { return }
                self.received = nil
                let next: HTTPServerRequestPart?
                do {
                    next = try self.parser.next(&bytes)
                } catch {
                    self.parseFailed(error, context: context)
                    return
                }
                if bytes.readableBytes > 0 { self.received = bytes }
                guard let next else { return }
                part = next
            }
            switch part {
            case .head(let head): self.received(head: head, context: context)
            case .body(var chunk): self.received(body: &chunk, context: context)
            case .end: self.receivedEnd(context: context)
            }
        }
    }

    /// Whether an answer is pending (a long poll, a publish being committed): requests behind it wait.
    private var isWaiting: Bool {
        switch self.state {
        case .waiting, .publishing: return true
        case .idle, .collecting, .refused, .discarding, .handedOff: return false
        }
    }

    /// Whether received bytes are parsed now: not behind a pending answer, not after an answer that closes the
    /// connection, not once the connection is a stream.
    private var isReading: Bool {
        switch self.state {
        case .idle, .collecting, .refused: return true
        case .waiting, .publishing, .discarding, .handedOff: return false
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            self.isQuiescing = true
            switch self.state {
            case .idle: context.close(promise: nil)
            case .waiting: self.finishLongPoll()
            case .collecting, .refused, .discarding, .publishing, .handedOff: break
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("Connection failed", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    /// A request the parser cannot read: a JSON `400` (`431` for an oversized head), and the connection closes.
    private func parseFailed(_ error: HTTPRequestParser.ParseError, context: ChannelHandlerContext) {
        self.received = nil
        var apiError: APIError
        switch error {
        case .headTooLarge:
            apiError = APIError(.requestHeaderFieldsTooLarge, "headers_too_large", "The request head is too large.")
        case .invalid(let reason):
            apiError = APIError(.badRequest, "bad_request", "The request is not valid HTTP/1.1: \(reason).")
        }
        apiError.closesConnection = true
        self.state = .discarding
        self.request = nil
        self.respond(.error(apiError), head: nil, context: context)
    }

    // MARK: Reading a request

    private func received(head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard case .idle = self.state else { return }
        self.pipelineHandlers.timeout.requestStarted()
        // The parser bounds the headers; the request line is bounded here.
        if head.uri.utf8.count > self.configuration.maxHeaderBytes {
            var error = APIError(
                .requestHeaderFieldsTooLarge, "headers_too_large",
                "The request target is \(head.uri.utf8.count) bytes; the limit is \(self.configuration.maxHeaderBytes)."
            )
            error.closesConnection = true
            self.respondEarly(.error(error), head: head, context: context)
            return
        }
        let target = RequestTarget(uri: head.uri)
        let length = self.parser.contentLength
        let waitsForContinue = self.parser.waitsForContinue
        guard let match = Router.match(path: target.path) else {
            self.refuse(head, .notFound(String(target.path)), now: waitsForContinue, context: context)
            return
        }
        guard match.route.allowedMethods.contains(head.method) else {
            self.refuse(
                head, .methodNotAllowed(head.method, allowed: match.route.allowedMethods), now: waitsForContinue,
                context: context)
            return
        }
        if head.method == .POST, let length, length > self.configuration.maxBodyBytes {
            self.respondEarly(
                .error(.payloadTooLarge(limit: self.configuration.maxBodyBytes)), head: head, context: context)
            return
        }
        self.request = Request(head: head, target: target, match: match, body: Self.emptyBody)
        self.state = .collecting
        // A client that sent its body along does not need the go-ahead (RFC 9110, 10.1.1).
        if waitsForContinue, (self.received?.readableBytes ?? 0) == 0 {
            context.writeAndFlush(Self.wrapOutboundOut(Self.continueResponse), promise: nil)
        }
    }

    private static let continueResponse = ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n")

    /// Refuses the request being read: when its end comes, or `now` (closing the connection) when the client waits
    /// for a go-ahead before sending its body, which it must not be left waiting for.
    private func refuse(_ head: HTTPRequestHead, _ error: APIError, now: Bool, context: ChannelHandlerContext) {
        guard now else {
            self.state = .refused(head, error)
            return
        }
        var error = error
        error.closesConnection = true
        self.respondEarly(.error(error), head: head, context: context)
    }

    private func received(body chunk: inout ByteBuffer, context: ChannelHandlerContext) {
        // Read through `self.request` in place: a copy would share the body's storage, and the append would copy it.
        guard case .collecting = self.state, self.request != nil else { return }
        guard self.request!.match.route.acceptsBody || chunk.readableBytes == 0 else {
            return  // a body on GET or OPTIONS is ignored
        }
        let received = self.request!.body.readableBytes
        if received + chunk.readableBytes > self.configuration.maxBodyBytes {
            self.respondEarly(
                .error(.payloadTooLarge(limit: self.configuration.maxBodyBytes)), head: self.request!.head,
                context: context)
            return
        }
        if received == 0 {
            self.request!.body = chunk  // a slice of the received bytes: a body read in one go is never copied
        } else {
            self.request!.body.writeBuffer(&chunk)  // in place: the body's only holder, so no copy
        }
    }

    private func receivedEnd(context: ChannelHandlerContext) {
        self.pipelineHandlers.timeout.requestCompleted()
        switch self.state {
        case .idle, .waiting, .publishing, .discarding, .handedOff:
            return  // no request is being read: the last four parse nothing
        case .refused(let head, let error):
            self.state = .idle
            self.respond(.error(error), head: head, context: context)
        case .collecting:
            self.state = .idle
            self.dispatch(self.request.take()!, context: context)
        }
    }

    // MARK: Routing

    private func dispatch(_ request: Request, context: ChannelHandlerContext) {
        if let refusal = self.connectionRefusal {
            if request.match.route == .events && request.head.method == .GET {
                self.refuseStream(request, context: context)
            } else {
                self.respond(.error(ServerLimits.refusal(refusal)), head: request.head, context: context)
            }
            return
        }
        if request.head.method == .OPTIONS {
            let headers = self.cors.preflightHeaders(
                origin: request.head.headers.first(name: "origin"), methods: request.match.route.allowedMethods)
            var response = HTTPResponse.empty(.noContent, headers: headers)
            response.includesCORS = true
            self.respond(response, head: request.head, context: context)
            return
        }
        do {
            switch request.match.route {
            case .events:
                try self.startStream(request, principal: try self.principal(request), context: context)
                return
            case .webSocket:
                try self.startWebSocket(request, principal: try self.principal(request), context: context)
                return
            case .history:
                let principal = try self.principal(request)
                let query = try RESTAPI.historyQuery(request.target)
                try self.authorize { () throws(AuthorizationError) in
                    try principal.authorizeSubscribe(to: query.selectors)
                }
                let page = try self.api.history(query, readableBy: principal)
                if page.events.isEmpty && query.wait > 0 && !self.isQuiescing {
                    try self.startLongPoll(request, query: query, principal: principal, context: context)
                    return
                }
                self.respond(RESTAPI.historyResponse(page), head: request.head, context: context)
                return
            case .publish:
                try self.publish(request, .publish, context: context)
            case .broadcast:
                try self.publish(request, .broadcast, context: context)
            case .message:
                try self.publish(request, .message, context: context)
            case .health:
                self.respond(self.api.health(), head: request.head, context: context)
            case .page, .asset:
                self.respond(
                    self.configuration.webAssets.response(
                        for: request.match.file ?? "", ifNoneMatch: request.head.headers.first(name: "if-none-match")),
                    head: request.head, context: context)
            case .metrics:
                self.respond(
                    HTTPResponse(
                        status: .ok, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                        body: self.metrics.scrape(self.api.broker)),
                    head: request.head, context: context)
            case .topics:
                let principal = try self.principal(request)
                // Reading topics is subscribing's business: an anonymous client that may not subscribe gets a 401.
                try self.authorize { () throws(AuthorizationError) in try principal.authorizeSubscribe(to: []) }
                self.respond(self.api.topics(viewableBy: principal), head: request.head, context: context)
            case .topic:
                let principal = try self.principal(request)
                try self.authorize { () throws(AuthorizationError) in try principal.authorizeSubscribe(to: []) }
                self.respond(
                    try self.authorized { () throws(APIError) in
                        try self.api.topic(request.match.topic ?? "", viewableBy: principal)
                    },
                    head: request.head, context: context)
            }
        } catch let error as APIError {
            self.respond(.error(error), head: request.head, context: context)
        } catch {
            self.logger.error("Request failed", metadata: ["error": "\(error)", "uri": "\(request.head.uri)"])
            self.respond(.error(.internalError), head: request.head, context: context)
        }
    }

    /// A publish, broadcast or direct message: a token that may publish (`401` before the body is read), one of the
    /// client's publishes per its rate (`429`), then the endpoint's answer once the broker has it. The endpoint is
    /// chosen by a switch, not passed as a method reference: a partially applied method is a closure allocated per
    /// request.
    private func publish(_ request: Request, _ kind: PublishBody.Kind, context: ChannelHandlerContext) throws(APIError)
    {
        let principal = try self.publisher(request)
        try self.takePublishToken(principal)
        let (target, headers, body, loop) = (request.target, request.head.headers, request.body, context.eventLoop)
        let answer = try self.authorized { () throws(APIError) in
            switch kind {
            case .publish:
                try self.api.publish(target: target, headers: headers, body: body, principal: principal, on: loop)
            case .broadcast:
                try self.api.broadcast(target: target, headers: headers, body: body, principal: principal, on: loop)
            case .message:
                try self.api.message(target: target, headers: headers, body: body, principal: principal, on: loop)
            }
        }
        switch answer {
        case .now(let response): self.respond(response, head: request.head, context: context)
        case .later(let future): self.await(future, head: request.head, context: context)
        }
    }

    /// Answers `head` when `answer` completes, after the commit of a durable store. Requests pipelined behind it
    /// wait until then.
    private func await(
        _ answer: EventLoopFuture<HTTPResponse>, head: HTTPRequestHead, context: ChannelHandlerContext
    ) {
        self.state = .publishing(head)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        answer.whenComplete { result in
            let handler = bound.value
            guard case .publishing = handler.state, let context = handler.context else { return }
            handler.state = .idle
            switch result {
            case .success(let response):
                handler.respond(response, head: head, context: context)
            case .failure(let error):
                handler.respond(.error(APIError(publishFailure: error)), head: head, context: context)
            }
            handler.parseReceived(context: context)
        }
    }

    // MARK: Authorization

    /// Whom the request acts for; a refused token is counted and answered `401`.
    private func principal(_ request: Request) throws(APIError) -> Principal {
        do {
            return try self.authenticator.principal(request.head, target: request.target)
        } catch {
            self.refusedAuthorization(error)
            throw error
        }
    }

    /// Whom a publish acts for: a client without a token is refused (`401`) before its body is read.
    private func publisher(_ request: Request) throws(APIError) -> Principal {
        let principal = try self.principal(request)
        try self.authorize { () throws(AuthorizationError) in try principal.authorizePublish(to: []) }
        return principal
    }

    /// Runs a policy check; its refusal is counted, logged and answered `401` or `403`.
    private func authorize(_ check: () throws(AuthorizationError) -> Void) throws(APIError) {
        do {
            try check()
        } catch {
            let apiError = APIError(error)
            self.refusedAuthorization(apiError)
            throw apiError
        }
    }

    /// `body`, with its `401` or `403` refusals counted and logged like the handler's own.
    private func authorized<T>(_ body: () throws(APIError) -> T) throws(APIError) -> T {
        do {
            return try body()
        } catch {
            if error.status == .unauthorized || error.status == .forbidden {
                self.refusedAuthorization(error)
            }
            throw error
        }
    }

    private func refusedAuthorization(_ error: APIError) {
        self.metrics.refused(error.status == .forbidden ? .forbidden : .unauthorized)
        self.logger.info(
            "Request refused",
            metadata: [
                "client.address": "\(self.clientAddress ?? "-")", "code": "\(error.code)",
                "reason": "\(error.message)",
            ])
    }

    /// One publish of this client's rate (REST publishes, broadcasts and direct messages alike): a token's subject
    /// has one bucket wherever it connects from; without one, the client IP has.
    private func takePublishToken(_ principal: Principal) throws(APIError) {
        guard self.limits.publishRate.rate > 0 else { return }
        let client = principal.userID.map { "sub:\($0)" } ?? self.clientAddress ?? "-"
        if let wait = self.limits.publishRate.acquire(client: client) {
            self.metrics.refused(.rateLimited)
            throw ServerLimits.rateLimited(retryAfter: wait)
        }
    }

    /// The SSE endpoint's answer on a connection over a limit: a stream that says when to retry, then ends, so a
    /// browser's `EventSource` retries (it stops for good on any other answer).
    private func refuseStream(_ request: Request, context: ChannelHandlerContext) {
        self.state = .discarding
        self.pipelineHandlers.timeout.responseCompleted()
        let origin = request.head.headers.first(name: "origin")
        context.write(
            Self.wrapOutboundOut(SSEHandler.responseHead(extraHeaders: self.cors.headers(origin: origin))),
            promise: nil)
        context.write(
            Self.wrapOutboundOut(SSEFrame.retryHint(milliseconds: 5000, allocator: context.channel.allocator)),
            promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(Self.wrapOutboundOut(SSEFrame.lastChunk)).whenComplete { _ in
            bound.value.close(promise: nil)
        }
    }

    // MARK: Event streams

    private func startStream(
        _ request: Request, principal: Principal, context: ChannelHandlerContext
    ) throws(APIError) {
        let selectors = try RESTAPI.selectors(request.target)
        let name = try RESTAPI.displayName(request.target)
        if selectors.count > self.api.broker.configuration.maxSelectorsPerSubscription {
            throw APIError(
                .badRequest, "too_many_topics",
                "A subscription may name at most \(self.api.broker.configuration.maxSelectorsPerSubscription) topic selectors."
            )
        }
        try self.authorize { () throws(AuthorizationError) in try principal.authorizeSubscribe(to: selectors) }
        let origin = request.head.headers.first(name: "origin")
        let sse = SSEHandler(
            broker: self.api.broker, selectors: selectors, principal: principal,
            lastEventID: RESTAPI.lastEventID(request.target, headers: request.head.headers), name: name,
            responseHead: SSEHandler.responseHead(extraHeaders: self.cors.headers(origin: origin)),
            slowConsumerBytes: self.configuration.slowConsumerBytes, metrics: self.metrics, logger: self.logger)
        self.state = .handedOff
        do {
            try context.pipeline.syncOperations.addHandler(sse, position: self.pipelineHandlers.streamPosition)
        } catch {
            context.close(promise: nil)
            return
        }
        HTTPPipeline.remove(self.pipelineHandlers, requestHandler: self, from: context.pipeline)
    }

    // MARK: WebSockets

    /// Answers the handshake with `101`, then hands the connection to NIOWebSocket's frame decoder and a
    /// `WebSocketHandler`, and removes every HTTP handler.
    private func startWebSocket(
        _ request: Request, principal: Principal, context: ChannelHandlerContext
    ) throws(APIError) {
        try WebSocketUpgrade.validate(request.head)
        guard self.cors.allowsWebSocket(from: request.head.headers.first(name: "origin")) else {
            throw WebSocketUpgrade.refusal(
                .forbidden, "forbidden_origin", "This origin may not open a WebSocket here (see --cors-origins).")
        }
        var selectors: [TopicSelector] = []
        let name: String?
        do {
            name = try RESTAPI.displayName(request.target)
            // A WebSocket that can neither subscribe nor publish is refused at the handshake.
            try self.authorize { () throws(AuthorizationError) in try principal.authorizeSubscribe(to: []) }
            if request.target.contains("topic", or: "topics") {
                selectors = try RESTAPI.selectors(request.target)
                try self.authorize { () throws(AuthorizationError) in try principal.authorizeSubscribe(to: selectors) }
            }
        } catch {
            var refusal = error
            refusal.closesConnection = true
            throw refusal
        }
        let origin = request.head.headers.first(name: "origin")
        let deflate = PerMessageDeflate.negotiate(offers: request.head.headers["sec-websocket-extensions"])
        let handler = WebSocketHandler(
            api: self.api, selectors: selectors, principal: principal,
            lastEventID: RESTAPI.lastEventID(request.target, headers: request.head.headers), name: name,
            deflate: deflate.map { ($0.parameters, self.webSocketCompression) },
            maxMessageBytes: self.configuration.maxWebSocketMessageBytes, publishRate: self.limits.publishRate,
            clientAddress: self.clientAddress, slowConsumerBytes: self.configuration.slowConsumerBytes,
            metrics: self.metrics, logger: self.logger)
        let extraHeaders =
            self.cors.headers(origin: origin)
            + (deflate.map { [("Sec-WebSocket-Extensions", $0.responseHeaderValue)] } ?? [])
        self.state = .handedOff
        let bound = NIOLoopBound((self, context, handler), eventLoop: context.eventLoop)
        WebSocketUpgrade.responseHeaders(for: request.head, channel: context.channel).whenComplete { result in
            let (requestHandler, context, handler) = bound.value
            switch result {
            case .success(let headers):
                requestHandler.finishUpgrade(
                    headers: headers, extraHeaders: extraHeaders, handler: handler, context: context)
            case .failure(let error):
                requestHandler.state = .discarding
                requestHandler.respond(
                    .error(WebSocketUpgrade.refusal(.badRequest, "bad_upgrade", "The handshake failed: \(error).")),
                    head: request.head, context: context)
            }
        }
    }

    private func finishUpgrade(
        headers: HTTPHeaders, extraHeaders: [(String, String)], handler: WebSocketHandler,
        context: ChannelHandlerContext
    ) {
        let response = WebSocketUpgrade.switchingProtocols(
            headers: headers, extraHeaders: extraHeaders, allocator: context.channel.allocator)
        self.pipelineHandlers.timeout.responseCompleted()
        context.writeAndFlush(Self.wrapOutboundOut(response), promise: nil)
        let decoder = ByteToMessageHandler(
            WebSocketFrameDecoder(maxFrameSize: self.configuration.maxWebSocketMessageBytes))
        do {
            try context.pipeline.syncOperations.addHandlers(
                [decoder, handler], position: self.pipelineHandlers.streamPosition)
        } catch {
            context.close(promise: nil)
            return
        }
        HTTPPipeline.remove(self.pipelineHandlers, requestHandler: self, from: context.pipeline)
    }

    // MARK: Long polls

    private func startLongPoll(
        _ request: Request, query: RESTAPI.HistoryQuery, principal: Principal, context: ChannelHandlerContext
    ) throws {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let waiter = LongPollWaiter { bound.value.longPollWoke() }
        _ = try self.api.broker.subscribe0(
            waiter, selectors: query.selectors, lastEventID: nil, transport: .longPoll, on: context.eventLoop)
        let timer = context.eventLoop.scheduleTask(in: .seconds(Int64(query.wait))) { bound.value.finishLongPoll() }
        self.state = .waiting(
            LongPoll(request: request, query: query, principal: principal, waiter: waiter, timer: timer))
        // An event may have been published between the first look and the registration.
        self.longPollWoke()
    }

    private func longPollWoke() {
        guard case .waiting(let poll) = self.state,
            let page = try? self.api.history(poll.query, readableBy: poll.principal),
            !page.events.isEmpty
        else { return }
        self.finishLongPoll(with: page)
    }

    private func finishLongPoll(with knownPage: HistoryPage? = nil) {
        guard let context = self.context, case .waiting(let poll) = self.state else { return }
        self.state = .idle
        self.stop(poll, context: context)
        let response: HTTPResponse
        if let knownPage {
            response = RESTAPI.historyResponse(knownPage)
        } else {
            do {
                response = RESTAPI.historyResponse(try self.api.history(poll.query, readableBy: poll.principal))
            } catch {
                response = .error(error)
            }
        }
        self.respond(response, head: poll.request.head, context: context)
        self.parseReceived(context: context)
    }

    /// Ends a poll unanswered: its connection closed. Leaving `.waiting` lets go of the waiter and the timer, whose
    /// closures hold this handler (else handler, state, waiter and closure would keep each other alive, with the
    /// request and the broker); a second call (`channelInactive`, then `handlerRemoved`) finds nothing to do.
    private func abandonLongPoll(context: ChannelHandlerContext) {
        guard case .waiting(let poll) = self.state else { return }
        self.state = .discarding
        self.received = nil
        self.stop(poll, context: context)
    }

    private func stop(_ poll: LongPoll, context: ChannelHandlerContext) {
        poll.timer.cancel()
        self.api.broker.unsubscribe0(poll.waiter, selectors: poll.query.selectors, on: context.eventLoop)
    }

    // MARK: Writing

    private func respondEarly(_ response: HTTPResponse, head: HTTPRequestHead, context: ChannelHandlerContext) {
        self.state = .discarding
        self.request = nil
        self.respond(response, head: head, context: context)
    }

    /// Writes `response` whole. `head` is nil when the request could not be parsed.
    private func respond(_ response: HTTPResponse, head: HTTPRequestHead?, context: ChannelHandlerContext) {
        let cors = response.includesCORS ? [] : self.cors.headers(origin: head?.headers.first(name: "origin"))
        let closes = response.closesConnection || head?.isKeepAlive != true || self.isQuiescing
        let isHTTP10 = head.map { $0.version.major == 1 && $0.version.minor == 0 } ?? false
        // The last answer's buffer, if the socket is done with it: `clear` keeps its storage when no one else holds
        // it, and gets a fresh one otherwise.
        var bytes = self.responseBuffer ?? context.channel.allocator.buffer(capacity: 0)
        self.responseBuffer = nil
        bytes.clear()
        HTTPResponseWriter.serialize(
            response, extraHeaders: cors, closes: closes, keepAliveHeader: isHTTP10 && !closes,
            omitBody: head?.method == .HEAD, into: &bytes)
        if !closes && bytes.capacity <= Self.maxKeptResponseBytes { self.responseBuffer = bytes }
        self.pipelineHandlers.timeout.responseCompleted()
        if closes {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(Self.wrapOutboundOut(bytes)).whenComplete { _ in bound.value.close(promise: nil) }
        } else {
            context.writeAndFlush(Self.wrapOutboundOut(bytes), promise: nil)
        }
    }
}

@available(*, unavailable)
extension HTTPRequestHandler: Sendable {}
