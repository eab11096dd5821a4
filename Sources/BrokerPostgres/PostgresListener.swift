import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO

/// A connection that `LISTEN`s on the cluster's channels, and connects again, once a second, whenever it drops.
///
/// ```
/// connect ─► LISTEN channels ─► SELECT 1 (the LISTENs are in effect) ─► state(true) ─► notifications …
///    ▲                                                                                    │ connection lost
///    └──────────────────────────── 1 s ◄── state(false) ◄─────────────────────────────────┘
/// ```
/// `state(true)` comes only once the server listens, so a reader that catches up from the table then misses
/// nothing: anything committed later is notified.
final class PostgresListener: Sendable {
    private struct State {
        var connection: PostgresConnection?
        var isStopped = false
        var isListening = false
    }

    private let url: PostgresURL
    private let eventLoop: any EventLoop
    private let channels: [String]
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    init(url: PostgresURL, eventLoop: any EventLoop, channels: [String], logger: Logger) {
        self.url = url
        self.eventLoop = eventLoop
        self.channels = channels
        self.logger = logger
    }

    /// Starts listening. `notification` gets each notification's channel and payload, on the connection's loop;
    /// `state` whether it listens now, on each change.
    func start(
        _ notification: @escaping @Sendable (String, String) -> Void,
        state: @escaping @Sendable (Bool) -> Void
    ) {
        self.connect(notification, state)
    }

    func stop() {
        let connection = self.state.withLockedValue { state -> PostgresConnection? in
            state.isStopped = true
            defer { state.connection = nil }
            return state.connection
        }
        try? connection?.close().wait()
    }

    private func connect(
        _ notification: @escaping @Sendable (String, String) -> Void, _ report: @escaping @Sendable (Bool) -> Void
    ) {
        let channels = self.channels
        let logger = self.logger
        PostgresConnection.connect(
            on: self.eventLoop, configuration: PostgresSession.configuration(self.url), id: 2, logger: logger
        ).flatMap { connection in
            for channel in channels {
                connection.addListener(channel: channel) { _, message in notification(message.channel, message.payload)
                }
            }
            // Sent after the LISTENs on the same connection: when it answers, they are in effect.
            return connection.query("SELECT 1", logger: logger).map { _ in connection }.flatMapError { error in
                connection.close().flatMapThrowing { throw error }
            }
        }.whenComplete { result in
            switch result {
            case .success(let connection):
                let keep = self.state.withLockedValue { state -> Bool in
                    guard !state.isStopped else { return false }
                    state.connection = connection
                    state.isListening = true
                    return true
                }
                guard keep else {
                    connection.close().whenComplete { _ in }
                    return
                }
                report(true)
                connection.closeFuture.whenComplete { _ in self.lost(notification, report) }
            case .failure(let error):
                logger.debug(
                    "PostgreSQL listener could not connect", metadata: ["error": "\(String(reflecting: error))"])
                self.lost(notification, report)
            }
        }
    }

    private func lost(
        _ notification: @escaping @Sendable (String, String) -> Void, _ report: @escaping @Sendable (Bool) -> Void
    ) {
        let (stopped, wasListening) = self.state.withLockedValue { state -> (Bool, Bool) in
            defer {
                state.connection = nil
                state.isListening = false
            }
            return (state.isStopped, state.isListening)
        }
        guard !stopped else { return }
        if wasListening { report(false) }
        self.eventLoop.scheduleTask(in: .seconds(1)) { self.connect(notification, report) }
    }
}
