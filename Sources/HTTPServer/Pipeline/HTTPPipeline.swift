import Logging
import NIOCore

/// Sets up the HTTP/1.1 pipeline of a new connection, and takes it down again when a request becomes an event
/// stream.
///
/// ```
/// head ─ [TLS] ─ RequestTimeoutHandler ─ HTTPRequestHandler ─ tail       (parses with HTTPRequestParser)
/// head ─ [TLS] ─ SSEHandler ─ tail                          (once a GET /api/events has ended)
/// head ─ [TLS] ─ WebSocketFrameDecoder ─ WebSocketHandler ─ tail        (after the 101)
/// ```
/// Responses are written as raw bytes by `HTTPRequestHandler` (see `HTTPResponseWriter`): every answer is complete
/// and small, so no response encoder sits in the pipeline.
/// Every HTTP handler added here is listed in `Handlers.all`, so `remove` leaves nothing of HTTP behind: a stream
/// then costs only its own handler. A new HTTP handler must be added to `all` too (a test checks the pipeline).
/// The TLS handler is not HTTP: it serves the connection for its whole life, so it is not in `all`, and a stream's
/// handlers go at `Handlers.streamPosition`, behind it.
enum HTTPPipeline {
    struct Handlers {
        let timeout: RequestTimeoutHandler

        var all: [any RemovableChannelHandler] { [self.timeout] }

        /// Where a stream's own handlers go: just in front of the first HTTP handler, so behind whatever the
        /// connection keeps for its whole life (TLS). `.first` would put them in front of the TLS handler, writing
        /// plaintext to the socket and reading ciphertext.
        var streamPosition: ChannelPipeline.SynchronousOperations.Position { .before(self.timeout) }
    }

    /// Takes a connection slot from `limits` (given back when the channel closes); a connection over a limit is still
    /// set up, and its handler answers its first request with a retryable refusal.
    /// - Parameters:
    ///   - limits: The server's shared limits; nil makes a set from `configuration` for this channel alone.
    ///   - webSocketCompression: The server's per-loop compressors; nil makes one for this channel's loop alone.
    ///   - metrics: The server's metrics; nil counts into a registry of this channel's own.
    static func configure(
        _ channel: any Channel, api: RESTAPI, configuration: BrokerConfiguration,
        limits: ServerLimits? = nil, webSocketCompression: WebSocketCompression? = nil, metrics: ServerMetrics? = nil,
        logger: Logger
    ) throws {
        let metrics = metrics ?? ServerMetrics()
        let limits = limits ?? ServerLimits(configuration)
        let address = channel.remoteAddress?.ipAddress
        let refusal = limits.connections.admit(address: address)
        if refusal == nil {
            channel.closeFuture.whenComplete { _ in limits.connections.release(address: address) }
        } else {
            metrics.refused(refusal == .serverFull ? .serverFull : .tooManyConnections)
            logger.info(
                "Connection over a limit", metadata: ["client.address": "\(address ?? "-")", "limit": "\(refusal!)"])
        }
        let handlers = Handlers(
            timeout: RequestTimeoutHandler(
                requestTimeout: TimeAmount(configuration.requestTimeout),
                idleTimeout: TimeAmount(configuration.idleTimeout))
        )
        let requestHandler = HTTPRequestHandler(
            api: api, configuration: configuration, pipelineHandlers: handlers, limits: limits,
            connectionRefusal: refusal, clientAddress: address,
            webSocketCompression: webSocketCompression ?? WebSocketCompression(eventLoops: [channel.eventLoop]),
            metrics: metrics, logger: logger)
        let sync = channel.pipeline.syncOperations
        try configuration.connectionSecurity?.secure(sync)
        try sync.addHandler(handlers.timeout)
        try sync.addHandler(requestHandler)
    }

    /// The parser's limits: a request line up to `maxHeaderBytes` plus room for the method and version (a longer
    /// target is answered `431` by `HTTPRequestHandler`), and headers up to `maxHeaderBytes` in all, 256 at most.
    static func parserLimits(_ configuration: BrokerConfiguration) -> HTTPRequestParser.Limits {
        HTTPRequestParser.Limits(
            maxRequestLineBytes: configuration.maxHeaderBytes + 64, maxHeaderBytes: configuration.maxHeaderBytes,
            maxHeaderCount: 256)
    }

    /// Removes every HTTP handler, leaving whatever sits in front of them (TLS, and the stream's own handlers).
    /// Must run on the channel's event loop.
    static func remove(_ handlers: Handlers, requestHandler: HTTPRequestHandler, from pipeline: ChannelPipeline) {
        let sync = pipeline.syncOperations
        for handler in handlers.all { sync.removeHandler(handler, promise: nil) }
        sync.removeHandler(requestHandler, promise: nil)
    }
}
