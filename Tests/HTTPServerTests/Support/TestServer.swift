import EventBroker
import HTTPServer
import Logging
import NIOCore
import NIOPosix

/// A real broker and server on 127.0.0.1, an ephemeral port and two event loops.
final class TestServer {
    let group: MultiThreadedEventLoopGroup
    let broker: Broker
    let server: BrokerServer
    let port: Int

    /// - Parameter store: Keeps history durably; the broker then answers publishes after their commit.
    init(store: (any EventStore)? = nil, _ configure: (inout BrokerConfiguration) -> Void = { _ in }) async throws {
        var configuration = BrokerConfiguration(host: "127.0.0.1", port: 0, eventLoopThreads: 2)
        // Every test client comes from 127.0.0.1 and some publish fast: limits are off unless a test sets them.
        configuration.maxConnectionsPerAddress = 0
        configuration.publishRate = 0
        configure(&configuration)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        let metrics = ServerMetrics()
        if let store {
            self.broker = try Broker(
                eventLoops: Array(self.group.makeIterator()), configuration: configuration.bus,
                metrics: BusMetrics(factory: metrics.factory), logger: logger, store: store)
        } else {
            self.broker = Broker(
                group: self.group, configuration: configuration.bus, metrics: BusMetrics(factory: metrics.factory),
                logger: logger)
        }
        self.server = BrokerServer(
            configuration: configuration, broker: self.broker, group: self.group, metrics: metrics, logger: logger)
        self.port = try await self.server.start()
    }

    func connect(receiveBufferSize: Int? = nil) throws -> RawConnection {
        try RawConnection(port: self.port, receiveBufferSize: receiveBufferSize)
    }

    /// One request on a fresh connection.
    func request(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: String = ""
    ) throws -> RawConnection.Response {
        try self.connect().request(method, target, headers: headers, body: Array(body.utf8))
    }

    /// Publishes JSON through the REST API and returns the event id.
    @discardableResult
    func publish(_ json: String, headers: [(String, String)] = []) throws -> String {
        let response = try self.request(
            "POST", "/api/events/publish", headers: [("Content-Type", "application/json")] + headers, body: json)
        guard response.status == 200, case .string(let id)? = try response.json()["id"] else {
            throw RawConnection.TimedOut(description: "publish failed: \(response.status) \(response.text)")
        }
        return id
    }

    /// Connections holding a slot of the server's connection limits (those over a limit hold none).
    var limitedConnections: Int { self.server.connectionCount }

    /// Subscribers registered on each event loop.
    func subscribersPerLoop() throws -> [Int] {
        try self.broker.shards.map { shard in try shard.eventLoop.submit { shard.count0 }.wait() }
    }

    /// Polls `condition` every 10 ms for up to `timeout`.
    func waitUntil(timeout: Duration = .seconds(5), _ condition: () throws -> Bool) throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            usleep(10_000)
        }
        return try condition()
    }

    func stop() async throws {
        await self.server.stop()
        self.broker.shutdown()
        try await self.group.shutdownGracefully()
    }
}

#if canImport(Glibc)
    import Glibc
#endif
