import EventBroker
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOPosix
import ServiceLifecycle

/// The HTTP/1.1 server: binds, accepts, sets up each connection's pipeline, and shuts down gracefully.
///
/// As a `Service` it runs until graceful shutdown, then stops accepting, asks every connection to finish (streams
/// end with a `retry:` hint so clients reconnect at once, long polls answer, idle keep-alives close) and waits up
/// to `shutdownGracePeriod` for them.
///
/// With `configuration.connectionSecurity` (TLS, from `BrokerTLS`) it serves HTTPS only, securing every connection
/// before HTTP reads it.
public final class BrokerServer: Service, Sendable {
    private struct State {
        var channel: (any Channel)?
        var quiescing: ServerQuiescingHelper?
    }

    public let configuration: BrokerConfiguration
    public let broker: Broker
    private let group: any EventLoopGroup
    private let limits: ServerLimits
    private let metrics: ServerMetrics
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    /// - Parameters:
    ///   - metrics: Served at `/metrics`; make the `Broker` with `BusMetrics(factory: metrics.factory)` so its
    ///     publishes and deliveries are there too.
    public init(
        configuration: BrokerConfiguration, broker: Broker, group: any EventLoopGroup,
        metrics: ServerMetrics = ServerMetrics(), logger: Logger
    ) {
        self.limits = ServerLimits(configuration)
        self.metrics = metrics
        self.configuration = configuration
        self.broker = broker
        self.group = group
        self.logger = logger
    }

    /// Connections holding a slot of the connection limits now (those refused for being over a limit hold none).
    public var connectionCount: Int { self.limits.connections.count }

    /// Binds the listening socket and returns the port it is on (useful with port 0).
    @discardableResult
    public func start() async throws -> Int {
        let quiescing = ServerQuiescingHelper(group: self.group)
        let api = RESTAPI(broker: self.broker, configuration: self.configuration, startedAt: .now)
        let configuration = self.configuration
        let logger = self.logger
        let compression = WebSocketCompression(eventLoops: self.group.makeIterator())
        let limits = self.limits
        let metrics = self.metrics
        let highWater = max(2, configuration.slowConsumerBytes / 2)
        let channel = try await ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // NIO keeps each channel's last receive buffer for reuse. A stream reads one small request and then
            // nothing, so start small (the allocator grows for bodies that need it): an idle stream keeps 512 bytes,
            // not 2 KiB.
            .childChannelOption(
                .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536)
            )
            .childChannelOption(.writeBufferWaterMark, value: .init(low: highWater / 2, high: highWater))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try HTTPPipeline.configure(
                        channel, api: api, configuration: configuration, limits: limits,
                        webSocketCompression: compression, metrics: metrics, logger: logger)
                }
            }
            .bind(host: self.configuration.host, port: self.configuration.port)
            .get()
        self.state.withLockedValue {
            $0.channel = channel
            $0.quiescing = quiescing
        }
        let port = channel.localAddress?.port ?? self.configuration.port
        let scheme = self.configuration.connectionSecurity?.scheme ?? "http"
        self.logger.notice(
            "EventBroker listening",
            metadata: [
                "host": "\(self.configuration.host)", "port": "\(port)",
                "url": "\(Self.baseURL(host: self.configuration.host, port: port, scheme: scheme))",
                "version": "\(RESTAPI.version)",
            ])
        return port
    }

    /// `http://host:port` or `https://host:port`, with an IPv6 address in brackets.
    static func baseURL(host: String, port: Int, scheme: String) -> String {
        let authority = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(authority):\(port)"
    }

    /// The bound port, once started.
    public var port: Int? { self.state.withLockedValue { $0.channel?.localAddress?.port } }

    public func run() async throws {
        if self.port == nil { try await self.start() }
        try? await gracefulShutdown()
        await self.stop()
    }

    /// Stops accepting and drains connections (see the type's documentation). Idempotent.
    public func stop() async {
        guard
            let quiescing = self.state.withLockedValue({ state -> ServerQuiescingHelper? in
                defer { state.quiescing = nil }
                return state.quiescing
            })
        else { return }
        self.logger.notice("Shutting down: draining connections")
        let promise = self.group.next().makePromise(of: Void.self)
        quiescing.initiateShutdown(promise: promise)
        let grace = TimeAmount(self.configuration.shutdownGracePeriod)
        let timeout = self.group.next().scheduleTask(in: grace) { promise.succeed() }
        try? await promise.futureResult.get()
        timeout.cancel()
        self.logger.notice("Server stopped")
    }
}
