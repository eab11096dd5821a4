import ArgumentParser
import BrokerJWT
import BrokerPostgres
import BrokerTLS
import EventBroker
import HTTPServer
import Logging
import NIOPosix
import ServiceLifecycle

/// `broker-cli serve`: runs the broker until SIGTERM or SIGINT, then shuts down gracefully.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Run the broker (history in memory, in SQLite or, for a cluster, in PostgreSQL with --store; every flag has a BROKER_* variable)."
    )

    @OptionGroup var options: ServerOptions

    func run() async throws {
        HeapTuning.apply()
        var configuration = try self.options.configuration()
        // An unusable certificate or key stops the start-up before anything runs: one line naming the file.
        configuration.connectionSecurity = try self.options.tlsFiles()?.makeConnectionSecurity()
        if let verification = try self.options.tokenVerification() {
            // An unusable secret or key stops the start-up the same way.
            configuration.tokenVerifier = try await TokenVerifier(configuration: verification)
            configuration.allowsAnonymousSubscribers = self.options.anonymousSubscribersAllowed
        }
        let level = try self.options.logLevelValue()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "EventBroker")
        if let verifier = configuration.tokenVerifier as? TokenVerifier {
            logger.notice(
                "Authorization on: publishing needs a token",
                metadata: [
                    "algorithms": "\(verifier.allowedAlgorithms.joined(separator: ","))",
                    "anonymous.subscribers": "\(configuration.allowsAnonymousSubscribers ? "allowed" : "refused")",
                ])
        } else {
            logger.notice("Authorization off: anyone may publish and subscribe (see --jwt-secret)")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        let metrics = ServerMetrics()
        let broker: Broker
        switch try self.options.storeChoice() {
        case .memory:
            broker = Broker(
                group: group, configuration: configuration.bus, metrics: BusMetrics(factory: metrics.factory),
                logger: logger)
        case .sqlite(let path, let synchronous):
            // A database that is locked by another broker, unwritable or corrupt stops the start-up with one line.
            do {
                let store = try SQLiteEventStore(path: path, synchronous: synchronous)
                broker = try Broker(
                    eventLoops: Array(group.makeIterator()), configuration: configuration.bus,
                    metrics: BusMetrics(factory: metrics.factory), logger: logger, store: store)
            } catch {
                try? await group.shutdownGracefully()
                throw error
            }
            logger.notice("History kept in SQLite", metadata: ["path": "\(path)", "sync": "\(synchronous.rawValue)"])
        case .postgres(let url):
            // PostgreSQL unreachable or refusing stops the start-up with one line naming it (never the password).
            do {
                let log = try PostgresClusterLog(url: url, logger: logger)
                broker = try Broker(
                    eventLoops: Array(group.makeIterator()), configuration: configuration.bus,
                    metrics: BusMetrics(factory: metrics.factory), logger: logger, cluster: log)
                logger.notice(
                    "Cluster node: history shared in PostgreSQL", metadata: ["url": "\(url)", "node": "\(log.nodeID)"])
            } catch {
                try? await group.shutdownGracefully()
                throw error
            }
        }
        let server = BrokerServer(
            configuration: configuration, broker: broker, group: group, metrics: metrics, logger: logger)
        let services = ServiceGroup(
            services: [broker, server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        do {
            try await services.run()
        } catch {
            logger.critical("EventBroker stopped", metadata: ["error": "\(error)"])
            try? await group.shutdownGracefully()
            throw ExitCode.failure
        }
        try? await group.shutdownGracefully()
    }
}
