import ArgumentParser
import BrokerJWT
import BrokerPostgres
import BrokerTLS
import EventBroker
import HTTPServer
import Logging

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The flags of `serve`. Each can also come from a `BROKER_*` environment variable; a flag wins over the variable.
struct ServerOptions: ParsableArguments {
    @Option(help: "Address to listen on. (env: BROKER_HOST, default: 127.0.0.1)")
    var host: String?

    @Option(help: "Port to listen on; 0 picks a free one. (env: BROKER_PORT, default: 8080)")
    var port: Int?

    @Option(help: "Event loop threads. (env: BROKER_THREADS, default: one per core)")
    var threads: Int?

    @Option(
        help: "Interval of the ': hb' heartbeat comment on streams, e.g. 15s. (env: BROKER_HEARTBEAT, default: 15s)")
    var heartbeat: String?

    @Option(
        help: """
            While an event loop is busy with fan-out, the least time between two of its deliveries, e.g. 5ms: \
            events published within it reach each connection in one write, at up to this much delay; 0 delivers \
            at once. At most 1s. \
            (env: BROKER_BATCH_WINDOW, default: 10ms)
            """)
    var batchWindow: String?

    @Option(help: "Events kept per topic for resuming clients. (env: BROKER_HISTORY_SIZE, default: 1000)")
    var historySize: Int?

    @Option(
        help: "Age after which events leave history, e.g. 1h; 0 keeps them. (env: BROKER_HISTORY_MAX_AGE, default: 1h)")
    var historyMaxAge: String?

    @Option(help: "Bytes of history kept over all topics, e.g. 64MiB. (env: BROKER_HISTORY_MAX_BYTES, default: 64MiB)")
    var historyMaxBytes: String?

    @Option(help: "Largest request body, e.g. 1MiB. (env: BROKER_MAX_BODY, default: 1MiB)")
    var maxBody: String?

    @Option(
        help:
            "Largest message a WebSocket client may send, e.g. 64KiB. (env: BROKER_MAX_WS_MESSAGE, default: the body limit + 4KiB)"
    )
    var maxWsMessage: String?

    @Option(
        help:
            "Unflushed bytes after which a subscriber is cut as a slow consumer. (env: BROKER_SLOW_CONSUMER_CAP, default: 4MiB)"
    )
    var slowConsumerCap: String?

    @Option(help: "Connections served at once; 0 for no limit. (env: BROKER_MAX_CONNECTIONS, default: 10000)")
    var maxConnections: Int?

    @Option(
        help: "Connections one client IP may hold; 0 for no limit. (env: BROKER_MAX_CONNECTIONS_PER_IP, default: 1000)")
    var maxConnectionsPerIp: Int?

    @Option(
        help:
            "Publishes per second one client (token subject, else IP) may make on average; 0 for no limit. (env: BROKER_PUBLISH_RATE, default: 1000)"
    )
    var publishRate: Int?

    @Option(help: "Publishes a client may make in a burst. (env: BROKER_PUBLISH_BURST, default: twice the rate)")
    var publishBurst: Int?

    @Option(help: "Comma-separated origins allowed by CORS, or '*'. (env: BROKER_CORS_ORIGINS, default: *)")
    var corsOrigins: String?

    @Option(help: "Time a client has to send a whole request, e.g. 30s. (env: BROKER_REQUEST_TIMEOUT, default: 30s)")
    var requestTimeout: String?

    @Option(
        help:
            "PEM certificate chain to serve HTTPS (and wss://) with; needs --tls-key. (env: BROKER_TLS_CERT, default: plain HTTP)"
    )
    var tlsCert: String?

    @Option(help: "PEM private key of the --tls-cert certificate, unencrypted. (env: BROKER_TLS_KEY)")
    var tlsKey: String?

    @Option(
        help:
            "Where history is kept: 'memory'; 'sqlite:PATH' to keep it in a SQLite file that survives restarts; or 'postgres://USER:PASSWORD@HOST:PORT/DATABASE' to run as one node of a cluster sharing that database. (env: BROKER_STORE, default: memory)"
    )
    var store: String?

    @Option(
        help:
            "With a SQLite store: 'normal' (an OS crash may lose the last publishes, a broker crash never does) or 'full' (nothing acknowledged is ever lost; slower). (env: BROKER_STORE_SYNC, default: normal)"
    )
    var storeSync: String?

    @Option(
        help:
            "HS256 secret (32+ bytes) that tokens are verified with; turns authorization on. Prefer the variable: flags show in 'ps'. (env: BROKER_JWT_SECRET, default: no authorization)"
    )
    var jwtSecret: String?

    @Option(
        help:
            "PEM public key file (RSA 2048+ for RS256, or EC P-256 for ES256) that tokens are verified with; turns authorization on. (env: BROKER_JWT_PUBLIC_KEY)"
    )
    var jwtPublicKey: String?

    @Option(help: "Audience a token's 'aud' must contain. (env: BROKER_JWT_AUDIENCE, default: not checked)")
    var jwtAudience: String?

    @Flag(
        help:
            "With authorization on, let clients without a token subscribe, to public events only. (env: BROKER_ALLOW_ANONYMOUS_SUBSCRIBE=1)"
    )
    var allowAnonymousSubscribe = false

    @Option(
        help:
            "Serve the browser demo's files (index.html, broker.js, app.js, style.css, favicon.svg) from this directory instead of the copies built in, read at start-up: for editing the page without rebuilding. (env: BROKER_WEB_ROOT)"
    )
    var webRoot: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical. (env: BROKER_LOG_LEVEL, default: info)")
    var logLevel: String?

    /// A whole number 0 or more from a flag or its variable.
    private func count(_ flag: Int?, _ variable: String, _ name: String) throws -> Int? {
        guard let text = self.value(flag.map(String.init), variable) else { return nil }
        guard let number = Int(text), number >= 0 else {
            throw ValidationError("\(name) must be 0 or a positive whole number, not '\(text)'.")
        }
        return number
    }

    func value(_ flag: String?, _ variable: String) -> String? {
        if let flag { return flag }
        guard let raw = getenv(variable) else { return nil }
        let text = String(cString: raw)
        return text.isEmpty ? nil : text
    }

    func logLevelValue() throws -> Logger.Level {
        let text = self.value(self.logLevel, "BROKER_LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw ValidationError(
                "--log-level: '\(text)' is not one of trace, debug, info, notice, warning, error, critical.")
        }
        return level
    }

    /// The demo's files found in `directory`; the built-in copies stand in for missing ones.
    private static func webAssets(in directory: String) throws -> WebAssets {
        guard (try? FileManager.default.contentsOfDirectory(atPath: directory)) != nil else {
            throw ValidationError("--web-root: '\(directory)' is not a readable directory.")
        }
        var contents: [String: [UInt8]] = [:]
        for name in WebAssets.names {
            if let data = FileManager.default.contents(atPath: directory + "/" + name) { contents[name] = Array(data) }
        }
        guard !contents.isEmpty else {
            throw ValidationError(
                "--web-root: '\(directory)' holds none of \(WebAssets.names.joined(separator: ", ")).")
        }
        return WebAssets(contents: contents)
    }

    func validate() throws {
        _ = try self.configuration()
        _ = try self.logLevelValue()
    }

    /// The configuration these flags and variables describe.
    func configuration() throws -> BrokerConfiguration {
        var configuration = BrokerConfiguration()
        if let directory = self.value(self.webRoot, "BROKER_WEB_ROOT") {
            configuration.webAssets = try Self.webAssets(in: directory)
        }
        if let host = self.value(self.host, "BROKER_HOST") { configuration.host = host }
        if let port = try self.int(self.port, "BROKER_PORT", "--port") {
            guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535.") }
            configuration.port = port
        }
        if let threads = try self.int(self.threads, "BROKER_THREADS", "--threads") {
            guard threads >= 1 else { throw ValidationError("--threads must be at least 1.") }
            configuration.eventLoopThreads = threads
        }
        if let text = self.value(self.heartbeat, "BROKER_HEARTBEAT") {
            let interval = try Self.duration(text, "--heartbeat")
            guard interval > .zero else { throw ValidationError("--heartbeat must be more than 0.") }
            configuration.bus.heartbeatInterval = interval
        }
        if let text = self.value(self.batchWindow, "BROKER_BATCH_WINDOW") {
            let window = try Self.duration(text, "--batch-window")
            guard window <= .seconds(1) else { throw ValidationError("--batch-window must be at most 1s.") }
            configuration.bus.batchWindow = window
        }
        if let size = try self.int(self.historySize, "BROKER_HISTORY_SIZE", "--history-size") {
            guard size >= 0 else { throw ValidationError("--history-size must be 0 or more.") }
            configuration.bus.history.eventsPerTopic = size
        }
        if let text = self.value(self.historyMaxAge, "BROKER_HISTORY_MAX_AGE") {
            let age = try Self.duration(text, "--history-max-age")
            configuration.bus.history.maxAge = age == .zero ? nil : age
        }
        if let text = self.value(self.historyMaxBytes, "BROKER_HISTORY_MAX_BYTES") {
            configuration.bus.history.maxBytes = try Self.bytes(text, "--history-max-bytes")
        }
        if let text = self.value(self.maxBody, "BROKER_MAX_BODY") {
            let bytes = try Self.bytes(text, "--max-body")
            guard bytes >= 1 else { throw ValidationError("--max-body must be at least 1 byte.") }
            configuration.maxBodyBytes = bytes
        }
        // A WebSocket publish carries the same body as a REST one, plus its message fields.
        configuration.maxWebSocketMessageBytes = configuration.maxBodyBytes + 4096
        if let text = self.value(self.maxWsMessage, "BROKER_MAX_WS_MESSAGE") {
            let bytes = try Self.bytes(text, "--max-ws-message")
            guard bytes >= 125 else { throw ValidationError("--max-ws-message must be at least 125 bytes.") }
            configuration.maxWebSocketMessageBytes = bytes
        }
        if let text = self.value(self.slowConsumerCap, "BROKER_SLOW_CONSUMER_CAP") {
            let bytes = try Self.bytes(text, "--slow-consumer-cap")
            guard bytes >= 1024 else { throw ValidationError("--slow-consumer-cap must be at least 1KiB.") }
            configuration.slowConsumerBytes = bytes
        }
        if let limit = try self.count(self.maxConnections, "BROKER_MAX_CONNECTIONS", "--max-connections") {
            configuration.maxConnections = limit
        }
        if let limit = try self.count(
            self.maxConnectionsPerIp, "BROKER_MAX_CONNECTIONS_PER_IP", "--max-connections-per-ip")
        {
            configuration.maxConnectionsPerAddress = limit
        }
        if let rate = try self.count(self.publishRate, "BROKER_PUBLISH_RATE", "--publish-rate") {
            configuration.publishRate = rate
            configuration.publishBurst = max(1, 2 * rate)
        }
        if let burst = try self.count(self.publishBurst, "BROKER_PUBLISH_BURST", "--publish-burst") {
            configuration.publishBurst = max(1, burst)
        }
        if let text = self.value(self.corsOrigins, "BROKER_CORS_ORIGINS") {
            configuration.corsAllowedOrigins = text.split(separator: ",").map {
                String($0).trimmingCharacters(in: " ")
            }.filter { !$0.isEmpty }
        }
        if let text = self.value(self.requestTimeout, "BROKER_REQUEST_TIMEOUT") {
            let timeout = try Self.duration(text, "--request-timeout")
            guard timeout > .zero else { throw ValidationError("--request-timeout must be more than 0.") }
            configuration.requestTimeout = timeout
        }
        return configuration
    }

    /// Where history is kept, from `--store` and `--store-sync`.
    enum Store: Equatable {
        case memory
        case sqlite(path: String, synchronous: SQLiteSynchronous)
        case postgres(PostgresURL)
    }

    func storeChoice() throws -> Store {
        let text = self.value(self.store, "BROKER_STORE") ?? "memory"
        let sync = self.value(self.storeSync, "BROKER_STORE_SYNC")
        if text == "memory" {
            if sync != nil { throw ValidationError("--store-sync applies to a SQLite store (--store sqlite:PATH).") }
            return .memory
        }
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            if sync != nil { throw ValidationError("--store-sync applies to a SQLite store (--store sqlite:PATH).") }
            do {
                return .postgres(try PostgresURL(text))
            } catch {
                throw ValidationError(error.message)
            }
        }
        guard text.hasPrefix("sqlite:"), text.count > "sqlite:".count else {
            throw ValidationError("--store must be 'memory', 'sqlite:PATH' or 'postgres://…', not '\(text)'.")
        }
        guard let synchronous = SQLiteSynchronous(rawValue: (sync ?? "normal").lowercased()) else {
            throw ValidationError("--store-sync must be 'normal' or 'full', not '\(sync ?? "")'.")
        }
        return .sqlite(path: String(text.dropFirst("sqlite:".count)), synchronous: synchronous)
    }

    /// How tokens are verified, when `--jwt-secret` or `--jwt-public-key` is given (nil: the broker is open). Reads
    /// the public key file; `Serve` builds the verifier from it.
    func tokenVerification() throws -> TokenVerifierConfiguration? {
        let secret = self.value(self.jwtSecret, "BROKER_JWT_SECRET")
        let keyPath = self.value(self.jwtPublicKey, "BROKER_JWT_PUBLIC_KEY")
        let audience = self.value(self.jwtAudience, "BROKER_JWT_AUDIENCE")
        guard secret != nil || keyPath != nil else {
            if audience != nil {
                throw ValidationError(
                    "--jwt-audience needs --jwt-secret or --jwt-public-key: the key tokens are checked with.")
            }
            if self.anonymousSubscribersAllowed {
                throw ValidationError(
                    "--allow-anonymous-subscribe needs --jwt-secret or --jwt-public-key: without them everyone may subscribe."
                )
            }
            return nil
        }
        var publicKey: String?
        if let keyPath {
            do {
                publicKey = try String(contentsOfFile: keyPath, encoding: .utf8)
            } catch {
                throw ValidationError(
                    "--jwt-public-key \(keyPath): the file cannot be read as text (\(error.localizedDescription)).")
            }
        }
        return TokenVerifierConfiguration(hmacSecret: secret, publicKeyPEM: publicKey, audience: audience)
    }

    /// `--allow-anonymous-subscribe`, or `BROKER_ALLOW_ANONYMOUS_SUBSCRIBE` set to 1 or true.
    var anonymousSubscribersAllowed: Bool {
        guard !self.allowAnonymousSubscribe else { return true }
        let text = self.value(nil, "BROKER_ALLOW_ANONYMOUS_SUBSCRIBE")?.lowercased()
        return text == "1" || text == "true"
    }

    /// The `--tls-cert` and `--tls-key` files, both or neither; `Serve` reads them before binding (a
    /// `TLSSetupError` names a bad one).
    func tlsFiles() throws -> TLSFiles? {
        switch (self.value(self.tlsCert, "BROKER_TLS_CERT"), self.value(self.tlsKey, "BROKER_TLS_KEY")) {
        case (let certificate?, let key?):
            return TLSFiles(certificateChainPath: certificate, privateKeyPath: key)
        case (.some, nil):
            throw ValidationError("--tls-cert needs --tls-key (or BROKER_TLS_KEY): the certificate's private key.")
        case (nil, .some):
            throw ValidationError(
                "--tls-key needs --tls-cert (or BROKER_TLS_CERT): the certificate chain it belongs to.")
        case (nil, nil):
            return nil
        }
    }

    private func int(_ flag: Int?, _ variable: String, _ name: String) throws -> Int? {
        if let flag { return flag }
        guard let text = self.value(nil, variable) else { return nil }
        guard let value = Int(text) else {
            throw ValidationError("\(variable)='\(text)' is not a whole number (\(name)).")
        }
        return value
    }

    /// `500ms`, `15s`, `10m`, `1h`, or a bare number of seconds.
    static func duration(_ text: String, _ name: String) throws -> Duration {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        let trimmed = text.trimmingCharacters(in: " ").lowercased()
        for (suffix, milliseconds) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            if let value = Int64(number), value >= 0, !(suffix == "m" && number.hasSuffix("m")) {
                return .milliseconds(value * milliseconds)
            }
        }
        if let seconds = Int64(trimmed), seconds >= 0 { return .seconds(seconds) }
        throw ValidationError("\(name): '\(text)' is not a duration; use e.g. 500ms, 15s, 10m, 1h.")
    }

    /// `512`, `64KiB`/`64k`, `4MiB`/`4m`, `1GiB`/`1g` (powers of 1024).
    static func bytes(_ text: String, _ name: String) throws -> Int {
        let units: [(String, Int)] = [
            ("kib", 1024), ("mib", 1 << 20), ("gib", 1 << 30), ("kb", 1024), ("mb", 1 << 20), ("gb", 1 << 30),
            ("k", 1024), ("m", 1 << 20), ("g", 1 << 30), ("b", 1),
        ]
        let trimmed = text.trimmingCharacters(in: " ").lowercased()
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            if let value = Int(trimmed.dropLast(suffix.count)), value >= 0 { return value * factor }
            break
        }
        if let value = Int(trimmed), value >= 0 { return value }
        throw ValidationError("\(name): '\(text)' is not a size; use e.g. 512, 64KiB, 4MiB.")
    }
}

extension String {
    func trimmingCharacters(in character: Character) -> String {
        var view = Substring(self)
        while view.first == character { view = view.dropFirst() }
        while view.last == character { view = view.dropLast() }
        return String(view)
    }
}
