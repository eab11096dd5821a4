import EventBroker
import NIOCore

/// Everything the server needs to run: network settings, limits and the bus's own settings.
///
/// A library type with defaults, so tests build one as easily as the CLI does from flags.
public struct BrokerConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port (tests).
    public var port: Int
    /// Event loop threads; one per core by default.
    public var eventLoopThreads: Int
    /// Largest request body accepted (413 beyond).
    public var maxBodyBytes: Int
    /// Largest request head (request line plus headers) accepted (431 beyond).
    public var maxHeaderBytes: Int
    /// Time a client has to send one complete request once it started (408 and close beyond).
    public var requestTimeout: Duration
    /// A keep-alive connection with no request in flight is closed after this long.
    public var idleTimeout: Duration
    /// Largest message a WebSocket client may send, across its fragments (closed with 1009 beyond).
    public var maxWebSocketMessageBytes: Int
    /// Open connections the broker serves at once; more are answered with a retryable refusal. 0: no limit.
    public var maxConnections: Int
    /// Open connections one client IP may hold; more are answered with a retryable refusal. 0: no limit.
    public var maxConnectionsPerAddress: Int
    /// Publishes per second one client (token subject, else IP) may make on average (REST and WebSocket); 0: no limit.
    public var publishRate: Int
    /// Publishes a client may make at once before `publishRate` applies.
    public var publishBurst: Int
    /// Unflushed bytes a subscriber may hold before it is disconnected as a slow consumer.
    public var slowConsumerBytes: Int
    /// Origins allowed to call the API from a browser; `*` allows any.
    public var corsAllowedOrigins: [String]
    /// How long shutdown waits for connections to finish before closing them.
    public var shutdownGracePeriod: Duration
    /// Verifies bearer tokens (`BrokerJWT.TokenVerifier`); nil leaves the broker open: anyone may publish and
    /// subscribe, and private events reach every subscriber.
    public var tokenVerifier: (any AccessTokenVerifying)?
    /// With a `tokenVerifier`: whether clients without a token may subscribe (they read public events only).
    /// Publishing always needs a token then.
    public var allowsAnonymousSubscribers: Bool
    /// What secures each connection before HTTP (TLS, from `BrokerTLS`); nil serves plain HTTP.
    public var connectionSecurity: (any ConnectionSecurity)?
    /// The browser demo and `broker.js`: the embedded copies, or a development directory's.
    public var webAssets: WebAssets
    public var bus: BusConfiguration

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        eventLoopThreads: Int = System.coreCount,
        maxBodyBytes: Int = 1024 * 1024,
        maxHeaderBytes: Int = 16 * 1024,
        requestTimeout: Duration = .seconds(30),
        idleTimeout: Duration = .seconds(75),
        maxWebSocketMessageBytes: Int = 1024 * 1024 + 4096,
        maxConnections: Int = 10_000,
        maxConnectionsPerAddress: Int = 1_000,
        publishRate: Int = 1_000,
        publishBurst: Int = 2_000,
        slowConsumerBytes: Int = 4 * 1024 * 1024,
        corsAllowedOrigins: [String] = ["*"],
        shutdownGracePeriod: Duration = .seconds(3),
        tokenVerifier: (any AccessTokenVerifying)? = nil,
        allowsAnonymousSubscribers: Bool = false,
        connectionSecurity: (any ConnectionSecurity)? = nil,
        webAssets: WebAssets = .embedded,
        bus: BusConfiguration = BusConfiguration()
    ) {
        self.host = host
        self.port = port
        self.eventLoopThreads = eventLoopThreads
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
        self.maxWebSocketMessageBytes = maxWebSocketMessageBytes
        self.maxConnections = maxConnections
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
        self.publishRate = publishRate
        self.publishBurst = publishBurst
        self.slowConsumerBytes = slowConsumerBytes
        self.corsAllowedOrigins = corsAllowedOrigins
        self.shutdownGracePeriod = shutdownGracePeriod
        self.tokenVerifier = tokenVerifier
        self.allowsAnonymousSubscribers = allowsAnonymousSubscribers
        self.connectionSecurity = connectionSecurity
        self.webAssets = webAssets
        self.bus = bus
    }
}
