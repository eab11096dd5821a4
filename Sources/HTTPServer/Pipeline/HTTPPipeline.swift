import Logging
import NIOCore
import NIOHTTP1

/// Sets up the HTTP/1.1 pipeline of a new connection, and takes it down again when a request becomes an event
/// stream.
///
/// ```
/// head ─ RequestTimeoutHandler ─ HTTPResponseEncoder ─ HTTPRequestDecoder ─ HTTPServerPipelineHandler
///      ─ HTTPErrorResponder ─ HTTPRequestHandler ─ tail
/// ```
/// Every handler added here is listed in `Handlers.all`, so `remove` leaves nothing of HTTP behind: a stream then
/// costs only its `SSEHandler`. A new setup handler must be added to `all` too (a test checks the pipeline).
enum HTTPPipeline {
    struct Handlers {
        let timeout: RequestTimeoutHandler
        let encoder: HTTPResponseEncoder
        let decoder: ByteToMessageHandler<HTTPRequestDecoder>
        let pipelining: HTTPServerPipelineHandler
        let errorResponder: HTTPErrorResponder

        var all: [any RemovableChannelHandler] {
            [self.timeout, self.encoder, self.decoder, self.pipelining, self.errorResponder]
        }
    }

    static func configure(
        _ channel: any Channel, api: RESTAPI, configuration: BrokerConfiguration, logger: Logger
    ) throws {
        let handlers = Handlers(
            timeout: RequestTimeoutHandler(
                requestTimeout: configuration.requestTimeout.timeAmount,
                idleTimeout: configuration.idleTimeout.timeAmount),
            encoder: HTTPResponseEncoder(),
            decoder: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
            pipelining: HTTPServerPipelineHandler(),
            errorResponder: HTTPErrorResponder()
        )
        let requestHandler = HTTPRequestHandler(
            api: api, configuration: configuration, pipelineHandlers: handlers, logger: logger)
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(handlers.timeout)
        try sync.addHandler(handlers.encoder)
        try sync.addHandler(handlers.decoder)
        try sync.addHandler(handlers.pipelining)
        try sync.addHandler(handlers.errorResponder)
        try sync.addHandler(requestHandler)
    }

    /// Removes every HTTP handler, leaving whatever was added in front of them (the stream's own handler).
    /// Must run on the channel's event loop.
    static func remove(_ handlers: Handlers, requestHandler: HTTPRequestHandler, from pipeline: ChannelPipeline) {
        let sync = pipeline.syncOperations
        for handler in handlers.all { sync.removeHandler(handler, promise: nil) }
        sync.removeHandler(requestHandler, promise: nil)
    }
}
