import ArgumentParser
import BrokerClient
import Foundation

/// `broker-cli subscribe`: follows `GET /api/events` (or, with `--ws`, the WebSocket at `GET /api/ws`) on a running
/// broker and prints each event as it arrives, reconnecting after drops and resuming from the last id seen, so no
/// event is lost.
///
/// ```
/// [1763780248000001] order.created: {"id":42}                        (default)
/// {"data":"{\"id\":42}","event":"order.created","id":"1763780248000001"}   (--json)
/// ```
/// Both transports print the same lines: ``WebSocketClient`` maps the WebSocket's JSON messages to the
/// ``SSEMessage``s ``SSEClient`` reads from the event stream. The broker's `connected` frame is a status line on
/// stderr (`connected as client …`), or a JSON line like the others with `--json`; other control frames (`gap`) are
/// printed like events but not counted by `--max-events`. Reconnections, and `error` messages over a WebSocket, are
/// logged to stderr. Every line is written straight to the file descriptor, so pipes see each event at once.
struct Subscribe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print events from a running broker as they arrive.",
        discussion: """
            Connects to GET <url>/api/events?topic=… and prints one line per event. With --ws it upgrades \
            GET <url>/api/ws?topic=… to a WebSocket instead (ws://host:port/api/ws?topic=…) and prints the same \
            lines. After a dropped connection it reconnects with backoff (the broker's retry: hint, or 1 s over a \
            WebSocket, doubling up to 30 s) and resumes after the last event id it saw (sent as Last-Event-ID, or as \
            lastEventId in the WebSocket URL). Stop it with Ctrl-C, or use --max-events.

            Examples:
              broker-cli subscribe --topic orders --topic 'audit/**'
              broker-cli subscribe --topic orders --json --max-events 10 | jq .data
              broker-cli subscribe --ws --topic orders --last-event-id 1763780248000001
            """
    )

    @Option(name: .customLong("topic"), help: "A topic or selector (orders/*, orders/**); repeat it for several.")
    var topics: [String]

    @Option(
        name: .customLong("last-event-id"),
        help: "Resume after this event id (sent as Last-Event-ID, or as lastEventId with --ws)."
    )
    var lastEventID: String?

    @Flag(name: .customLong("ws"), help: "Subscribe over a WebSocket (GET /api/ws) instead of Server-Sent Events.")
    var webSocket = false

    @Option(help: "The broker's base URL (default: $BROKER_URL, else \(BrokerURL.defaultString)).")
    var url: String?

    @Option(help: "An access token, sent as 'Authorization: Bearer' (default: $BROKER_TOKEN; see 'broker-cli token').")
    var token: String?

    @Flag(help: "Print one compact JSON object per line: {\"data\":…,\"event\":…,\"id\":…}.")
    var json = false

    @Option(help: "Exit after this many events (control frames such as 'connected' are not counted).")
    var maxEvents: Int?

    @Option(help: "Reconnect when nothing, not even a heartbeat or ping, arrives for this many seconds; 0 never does.")
    var idleTimeout: Int = 60

    func validate() throws {
        guard !self.topics.isEmpty else {
            throw ValidationError("Give at least one --topic.")
        }
        if let maxEvents = self.maxEvents, maxEvents < 1 {
            throw ValidationError("--max-events must be at least 1.")
        }
        guard self.idleTimeout >= 0 else {
            throw ValidationError("--idle-timeout must be 0 or a positive number of seconds.")
        }
        _ = try Publish.brokerURL(self.url)
    }

    /// What either client reports, so both are printed by one ``handle(_:_:)``.
    private enum Update {
        case connected
        case message(SSEMessage)
        case serverError(WebSocketServerError)
        case disconnected(reason: String, reconnectDelay: Duration)
    }

    /// What ``handle(_:_:)`` keeps between updates.
    private struct Progress {
        /// Events printed so far, control frames not included.
        var counted = 0
        var connections = 0
        /// The last event id seen, which the client resumes after.
        var resumeID: String
    }

    func run() async throws {
        let baseURL = try Publish.brokerURL(self.url)
        let idleTimeout: Duration? = self.idleTimeout > 0 ? .seconds(self.idleTimeout) : nil
        let topicItems = self.topics.map { (name: "topic", value: $0) }
        let webSocketURL = baseURL.appendingPath("/api/ws").appendingQueryItems(topicItems)
        let eventStreamURL = baseURL.appendingPath("/api/events").appendingQueryItems(topicItems)
        var progress = Progress(resumeID: self.lastEventID ?? "")
        do {
            if self.webSocket {
                let client = WebSocketClient(
                    url: webSocketURL, headers: Publish.authorization(self.token), idleTimeout: idleTimeout)
                try await client.run(lastEventID: self.lastEventID) { event in
                    switch event {
                    case .connected: try self.handle(.connected, &progress)
                    case .message(let message): try self.handle(.message(message), &progress)
                    case .serverError(let error): try self.handle(.serverError(error), &progress)
                    case .disconnected(let error, let delay):
                        try self.handle(.disconnected(reason: "\(error)", reconnectDelay: delay), &progress)
                    }
                }
            } else {
                let client = SSEClient(
                    url: eventStreamURL, headers: Publish.authorization(self.token), idleTimeout: idleTimeout)
                try await client.run(lastEventID: self.lastEventID) { event in
                    switch event {
                    case .connected: try self.handle(.connected, &progress)
                    case .message(let message): try self.handle(.message(message), &progress)
                    case .disconnected(let error, let delay):
                        let reason = error.map { "\($0)" } ?? "the broker ended the stream"
                        try self.handle(.disconnected(reason: reason, reconnectDelay: delay), &progress)
                    }
                }
            }
        } catch let exitCode as ExitCode {
            throw exitCode
        } catch let error as BrokerClientError where error.code == .unexpectedResponse && error.status != nil {
            let status = error.status ?? 0
            Publish.printError("error: " + Publish.describeErrorAnswer(status: status, body: error.body ?? ""))
            throw ExitCode(1)
        } catch {
            let streamURL = self.webSocket ? webSocketURL.webSocketDescription : eventStreamURL.description
            Publish.printError("error: subscribing to \(streamURL) failed: \(error)")
            throw ExitCode(1)
        }
    }

    /// Prints one update of either client.
    /// - Throws: `ExitCode.success` after `--max-events` events, or when standard output is closed.
    private func handle(_ update: Update, _ progress: inout Progress) throws {
        switch update {
        case .connected:
            progress.connections += 1
            if progress.connections > 1 {
                Publish.printError(
                    progress.resumeID.isEmpty
                        ? "reconnected" : "reconnected, resuming after id \(progress.resumeID)"
                )
            }
        case .message(let message):
            progress.resumeID = message.lastEventID
            try self.show(message)
            if message.id != nil {
                progress.counted += 1
                if let maxEvents = self.maxEvents, progress.counted >= maxEvents {
                    throw ExitCode.success
                }
            }
        case .serverError(let error):
            Publish.printError("broker error: \(error)")
        case .disconnected(let reason, let delay):
            Publish.printError("\(reason); reconnecting in \(Self.format(delay))")
        }
    }

    /// Prints `message` in the chosen format.
    /// - Throws: `ExitCode.success` when standard output is closed (as by `| head -n 3`).
    private func show(_ message: SSEMessage) throws {
        if self.json {
            try Self.writeLine(Self.jsonLine(message))
        } else if message.id == nil, message.event == "connected" {
            Publish.printError(Self.connectedStatus(message.data))
        } else {
            try Self.writeLine("[\(message.id ?? "-")] \(message.event): \(message.data)")
        }
    }

    /// `{"data":…,"event":…,"id":…}` with sorted keys; `id` is `null` for control frames.
    private static func jsonLine(_ message: SSEMessage) -> String {
        let object: [String: Any] = ["id": message.id ?? NSNull(), "event": message.event, "data": message.data]
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: object,
                options: [.sortedKeys, .withoutEscapingSlashes]
            )
        else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// `connected as client <id> (topics: a, b)` from the data `{"clientId":…,"topics":[…]}` of `connected`.
    private static func connectedStatus(_ data: String) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any],
            let clientID = object["clientId"] as? String
        else { return "connected: \(data)" }
        guard let topics = object["topics"] as? [String] else { return "connected as client \(clientID)" }
        return "connected as client \(clientID) (topics: \(topics.joined(separator: ", ")))"
    }

    /// `3 s`, `1.5 s`, `250 ms`.
    private static func format(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds < 1000 {
            return "\(milliseconds) ms"
        }
        if milliseconds % 1000 == 0 {
            return "\(milliseconds / 1000) s"
        }
        return "\(Double(milliseconds) / 1000) s"
    }

    /// Writes `line` to standard output at once, unbuffered, so a pipe sees every event as it arrives.
    private static func writeLine(_ line: String) throws {
        do {
            try FileHandle.standardOutput.write(contentsOf: Data((line + "\n").utf8))
        } catch {
            throw ExitCode.success
        }
    }
}
