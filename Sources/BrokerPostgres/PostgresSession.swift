import EventBroker
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO

/// One PostgreSQL connection used from one thread of the broker's (never an event loop): it blocks for each
/// query, connects on first use, and after a failure connects again on the next use.
final class PostgresSession: Sendable {
    private let url: PostgresURL
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let role: String
    private let connection = NIOLockedValueBox<PostgresConnection?>(nil)

    init(url: PostgresURL, eventLoop: any EventLoop, role: String, logger: Logger) {
        self.url = url
        self.eventLoop = eventLoop
        self.role = role
        self.logger = logger
    }

    static func configuration(_ url: PostgresURL) -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.username, password: url.password, database: url.database,
            tls: .disable)
        configuration.options.connectTimeout = .seconds(3)
        return configuration
    }

    /// Runs `body` on the connection, connecting first if there is none; any failure closes the connection (the
    /// next call connects again) and is thrown as a `StoreError`.
    func run<Result>(_ body: (PostgresConnection) throws -> Result) throws(StoreError) -> Result {
        do {
            let connection = try self.connected()
            do {
                return try body(connection)
            } catch {
                // A statement the server refused leaves the connection usable, but a failed transaction must be
                // rolled back and a broken connection replaced: closing it covers both.
                self.drop(connection)
                throw error
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw Self.storeError(error, url: self.url)
        }
    }

    /// Runs `query`, returning its rows.
    static func rows(_ connection: PostgresConnection, _ query: PostgresQuery, _ logger: Logger) throws -> [PostgresRow]
    {
        try connection.query(query, logger: logger).wait().rows
    }

    func close() {
        let connection = self.connection.withLockedValue { connection in
            defer { connection = nil }
            return connection
        }
        try? connection?.close().wait()
    }

    private func connected() throws -> PostgresConnection {
        if let connection = self.connection.withLockedValue({ $0 }), !connection.isClosed { return connection }
        let connection = try PostgresConnection.connect(
            on: self.eventLoop, configuration: Self.configuration(self.url), id: 1, logger: self.logger
        ).wait()
        self.connection.withLockedValue { $0 = connection }
        self.logger.debug("PostgreSQL connected", metadata: ["role": "\(self.role)", "url": "\(self.url)"])
        return connection
    }

    private func drop(_ connection: PostgresConnection) {
        self.connection.withLockedValue { if $0 === connection { $0 = nil } }
        try? connection.close().wait()
    }

    /// A PostgreSQL failure in words an operator can act on: the server's message when it sent one.
    static func storeError(_ error: any Error, url: PostgresURL) -> StoreError {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                let code = error.serverInfo?[.sqlState] ?? "?"
                let kind: StoreError.Code = code == "53100" ? .full : code.hasPrefix("28") ? .unwritable : .io
                return StoreError(kind, "PostgreSQL at \(url) refused: \(message) (SQLSTATE \(code))")
            }
            if let underlying = error.underlying {
                return StoreError(.io, "PostgreSQL at \(url) is unreachable: \(underlying)")
            }
            return StoreError(.io, "PostgreSQL at \(url) failed: \(error.code)")
        }
        return StoreError(.io, "PostgreSQL at \(url) is unreachable: \(error)")
    }
}
