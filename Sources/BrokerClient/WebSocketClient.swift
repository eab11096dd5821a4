import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// Subscribes to the broker's WebSocket endpoint (RFC 6455 over HTTP/1.1), once or for as long as the task runs,
/// reporting the same ``SSEMessage``s an ``SSEClient`` reports for the same events.
///
/// ```
/// GET /api/ws?topic=orders&lastEventId=7 HTTP/1.1     HTTP/1.1 101 Switching Protocols
/// Upgrade: websocket                                 ← {"type":"connected","clientId":"…","topics":["orders"]}
/// Sec-WebSocket-Key: …                               ← {"type":"event","id":"8","topic":"orders","data":{…}}
///                                                    ← ping "…"   → pong "…" (masked, like every client frame)
///                                                    ← close 1001 → close 1001, then reconnect
/// ```
/// The topics and any resume point travel in the URL: `url` carries `topic=…` items, and each connection adds
/// `lastEventId` (replacing one already in `url`). Messages map to ``SSEMessage`` through a
/// ``WebSocketMessageParser``: `connected` and `gap` as the event stream's control frames, events with their id,
/// event name (`message` by default) and data as text. Fragmented messages are reassembled. Pings are answered by
/// the pipeline as soon as they are read, without waiting for the caller; reading itself pauses only while more than
/// a few messages wait for a caller that is still busy (NIO's async backpressure). An answer other than the upgrade
/// fails with ``BrokerClientError/Code/unexpectedResponse`` carrying its status and body, as ``SSEClient`` reports it.
///
/// ``run(lastEventID:onEvent:)`` reconnects after every drop (a close frame, a lost connection, an idle timeout)
/// with ``SSEReconnectPolicy`` backoff from ``SSEReconnectPolicy/initialDelay`` (the WebSocket protocol has no
/// `retry:` hint), resuming after the last event id it saw. It stops when its task is cancelled, when `onEvent`
/// throws, on a final answer (see ``BrokerClientError/isRetryable``), or after
/// ``SSEReconnectPolicy/maximumAttempts`` fruitless attempts.
public struct WebSocketClient: Sendable {
    /// What ``run(lastEventID:onEvent:)`` reports.
    public enum Event: Sendable {
        /// The server accepted the upgrade; `lastEventID` is the `lastEventId` that was sent, if any.
        case connected(lastEventID: String?)
        /// A `connected` or `event` message (a `gap` included), as ``SSEClient`` reports the same frame.
        case message(SSEMessage)
        /// An `error` message from the broker; the connection stays open.
        case serverError(WebSocketServerError)
        /// The connection ended, for the reason `error` gives; the next attempt starts after `reconnectDelay`.
        /// A close frame from the broker, even a normal one, is a ``BrokerClientError`` with its
        /// ``BrokerClientError/closeCode`` (1001 when the broker shuts down), so the code is never lost.
        case disconnected(error: any Error, reconnectDelay: Duration)
    }

    /// The upgrade URL (`/api/ws` with its `topic=` items); see ``BrokerURL/init(webSocket:)`` to parse `ws://`.
    public var url: BrokerURL
    /// Extra request headers, such as `Authorization`.
    public var headers: [(String, String)]
    /// The most connecting and the upgrade handshake may take.
    public var connectTimeout: Duration
    /// When set, a connection that reads nothing for this long is dropped with
    /// ``BrokerClientError/Code/idleTimeout``. The broker pings idle connections, so pick a few ping intervals.
    public var idleTimeout: Duration?
    /// How long ``run(lastEventID:onEvent:)`` waits between connections. The broker sends no `retry:` hint over a
    /// WebSocket, so each wait starts from ``SSEReconnectPolicy/initialDelay``.
    public var reconnectPolicy: SSEReconnectPolicy
    /// The longest message (all its frames together) accepted; a longer one closes the connection with 1009.
    public var maximumMessageBytes: Int

    public init(
        url: BrokerURL,
        headers: [(String, String)] = [],
        connectTimeout: Duration = .seconds(10),
        idleTimeout: Duration? = nil,
        reconnectPolicy: SSEReconnectPolicy = SSEReconnectPolicy(),
        maximumMessageBytes: Int = 16 * 1024 * 1024
    ) {
        self.url = url
        self.headers = headers
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.reconnectPolicy = reconnectPolicy
        self.maximumMessageBytes = maximumMessageBytes
    }

    /// `url` with `lastEventId=<id>` in place of any `lastEventId` item it had; `url` itself when `lastEventID` is
    /// empty.
    public func upgradeURL(lastEventID: String) -> BrokerURL {
        guard !lastEventID.isEmpty else { return self.url }
        var url = self.url
        let items = (url.query ?? "").split(separator: "&").filter { !$0.hasPrefix("lastEventId=") }
        url.query = items.isEmpty ? nil : items.joined(separator: "&")
        return url.appendingQueryItem(name: "lastEventId", value: lastEventID)
    }

    /// Reads one connection, calling `onMessage` for each `connected` and `event` message, and returns when the
    /// broker closes it with a close frame; `error` messages are skipped.
    /// - Parameters:
    ///   - lastEventID: Sent as `lastEventId` unless `nil` or empty.
    ///   - onMessage: Called for each message in order; the next one is not read until it returns. What it throws
    ///     closes the connection (with 1000) and is rethrown.
    /// - Returns: The parser at the end, for its ``WebSocketMessageParser/lastEventID``, and the broker's close
    ///   frame as a ``BrokerClientError`` with its ``BrokerClientError/closeCode`` (1005 when it had none).
    /// - Throws: What `onMessage` throws, or why the connection ended without a close frame from the broker.
    @discardableResult
    public func connect(
        lastEventID: String? = nil,
        onMessage: (SSEMessage) async throws -> Void
    ) async throws -> (parser: WebSocketMessageParser, close: BrokerClientError) {
        var parser = WebSocketMessageParser(lastEventID: lastEventID ?? "")
        var delivered = 0
        do {
            let close = try await self.stream(parser: &parser, delivered: &delivered, onConnected: {}) { output in
                if case .message(let message) = output {
                    try await onMessage(message)
                }
            }
            return (parser, close)
        } catch let error as CallbackError {
            throw error.underlying
        }
    }

    /// Follows the subscription across reconnections until the task is cancelled, reporting each connection,
    /// message, broker error and drop to `onEvent`.
    /// - Parameters:
    ///   - lastEventID: Where to resume from; afterwards the last id seen is sent on every reconnection.
    ///   - onEvent: Called in order; the next message is not handed over until it returns (pings that arrive
    ///     meanwhile are still answered). What it throws stops the loop and is rethrown, so `throw` is how a caller
    ///     stops after enough events.
    /// - Throws: `CancellationError` when the task is cancelled, what `onEvent` throws, a ``BrokerClientError``
    ///   that is not ``BrokerClientError/isRetryable``, or the last error once
    ///   ``SSEReconnectPolicy/maximumAttempts`` is exceeded.
    public func run(lastEventID: String? = nil, onEvent: (Event) async throws -> Void) async throws {
        var lastEventID = lastEventID ?? ""
        var failures = 0
        while true {
            try Task.checkCancellation()
            var parser = WebSocketMessageParser(lastEventID: lastEventID)
            var delivered = 0
            let failure: any Error
            let sentLastEventID = lastEventID.isEmpty ? nil : lastEventID
            do {
                failure = try await self.stream(
                    parser: &parser,
                    delivered: &delivered,
                    onConnected: { try await onEvent(.connected(lastEventID: sentLastEventID)) },
                    onOutput: { output in
                        switch output {
                        case .message(let message): try await onEvent(.message(message))
                        case .serverError(let error): try await onEvent(.serverError(error))
                        case .ignored: break
                        }
                    }
                )
            } catch let error as CallbackError {
                throw error.underlying
            } catch {
                failure = error
            }
            lastEventID = parser.lastEventID
            try Task.checkCancellation()

            if let clientError = failure as? BrokerClientError, !clientError.isRetryable {
                throw clientError
            }
            if delivered > 0 {
                failures = 0
            }
            if let maximumAttempts = self.reconnectPolicy.maximumAttempts, failures >= maximumAttempts {
                throw failure
            }
            let delay = self.reconnectPolicy.delay(afterFailures: failures, serverRetry: nil)
            failures += 1
            try await onEvent(.disconnected(error: failure, reconnectDelay: delay))
            try await Task.sleep(for: delay)
        }
    }

    /// Wraps what a caller's callback throws, so it is told apart from connection failures and rethrown as is.
    private struct CallbackError: Error {
        var underlying: any Error
    }

    /// Runs one connection through `parser` until the broker closes it with a close frame, which is returned.
    /// `delivered` counts the `event` messages that had an id; both stay updated when this throws.
    private func stream(
        parser: inout WebSocketMessageParser,
        delivered: inout Int,
        onConnected: () async throws -> Void,
        onOutput: (WebSocketMessageParser.Output) async throws -> Void
    ) async throws -> BrokerClientError {
        let connection = try await self.open(lastEventID: parser.lastEventID)
        do {
            try await connection.executeThenClose { inbound, _ in
                do {
                    try await onConnected()
                } catch {
                    throw CallbackError(underlying: error)
                }
                for try await text in inbound {
                    let output = try parser.parse(text)
                    if case .message(let message) = output, message.id != nil {
                        delivered += 1
                    }
                    do {
                        try await onOutput(output)
                    } catch {
                        throw CallbackError(underlying: error)
                    }
                }
            }
        } catch let error as BrokerClientError {
            // The frame handler reports the broker's close frame as an error carrying its code.
            guard error.closeCode != nil else { throw error }
            return error
        } catch let error as CallbackError {
            throw error
        } catch let error as CancellationError {
            throw error
        } catch {
            throw BrokerClientError(.connectionClosed, "Lost the connection to \(self.url.hostHeader) (\(error))")
        }
        try Task.checkCancellation()
        throw BrokerClientError(
            .connectionClosed,
            "\(self.url.webSocketDescription) closed the connection without a close frame"
        )
    }

    /// Connects, sends the upgrade request and returns the upgraded connection.
    private func open(lastEventID: String) async throws -> WebSocketHandshakeHandler.Connection {
        let url = self.upgradeURL(lastEventID: lastEventID)
        let (channel, upgraded): (any Channel, EventLoopFuture<WebSocketHandshakeHandler.Connection>)
        do {
            (channel, upgraded) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(TimeAmount(self.connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: url.host, port: url.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        (channel, try self.configure0(channel, url: url))
                    }
                }
        } catch let error as CancellationError {
            throw error
        } catch {
            let reason = BrokerHTTPClient.describeConnectFailure(error, timeout: self.connectTimeout)
            throw BrokerClientError(.connectionFailed, "Could not connect to \(url.hostHeader): \(reason)")
        }
        // The handshake ends on its own (answer, close or timeout); cancelling closes the channel to end it sooner.
        return try await withTaskCancellationHandler {
            try await upgraded.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// Installs the handlers of a connection about to connect to `url`, on its event loop, and returns the
    /// handshake's future.
    /// - Parameter requestKey: The `Sec-WebSocket-Key`; tests pass a fixed one to know the `Sec-WebSocket-Accept`.
    func configure0(
        _ channel: any Channel,
        url: BrokerURL,
        requestKey: String = NIOWebSocketClientUpgrader.randomRequestKey()
    ) throws -> EventLoopFuture<WebSocketHandshakeHandler.Connection> {
        var headers = HTTPHeaders(self.headers)
        if !headers.contains(name: "Host") {
            headers.add(name: "Host", value: url.hostHeader)
        }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.requestTarget, headers: headers)
        let operations = channel.pipeline.syncOperations
        if let idleTimeout = self.idleTimeout {
            try operations.addHandlers(
                IdleStateHandler(readTimeout: TimeAmount(idleTimeout)),
                ReadTimeoutHandler(url: url, idleTimeout: idleTimeout)
            )
        }
        let upgrader = NIOWebSocketClientUpgrader(
            requestKey: requestKey,
            maxFrameSize: self.maximumMessageBytes,
            automaticErrorHandling: true,
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.handler(type: WebSocketHandshakeHandler.self)
                        .upgraded(channel: channel)
                }
            }
        )
        try operations.addHTTPClientHandlers(
            leftOverBytesStrategy: .forwardBytes,
            withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
        )
        let promise = channel.eventLoop.makePromise(of: WebSocketHandshakeHandler.Connection.self)
        try operations.addHandler(
            WebSocketHandshakeHandler(
                head: head,
                url: url.webSocketDescription,
                timeout: self.connectTimeout,
                maximumMessageBytes: self.maximumMessageBytes,
                promise: promise
            )
        )
        return promise.futureResult
    }
}
