import NIOCore
import NIOHTTP1

/// Subscribes to a Server-Sent Events stream over HTTP/1.1, once or for as long as the task runs.
///
/// ```
/// GET /api/events?topic=orders HTTP/1.1      HTTP/1.1 200 OK
/// Accept: text/event-stream                  Content-Type: text/event-stream; charset=utf-8
/// Last-Event-ID: 1763780248000001            Transfer-Encoding: chunked
///                                            retry: 3000\nevent: connected\ndata: {…}\n\n
///                                            id: 1763780248000002\ndata: …\n\n
/// ```
/// The chunked body goes through the NIOHTTP1 decoder and an ``SSEParser``. Anything but `200` with a
/// `text/event-stream` content type fails with a ``BrokerClientError`` (``BrokerClientError/Code/unexpectedResponse``)
/// carrying the status and the body text.
///
/// ``run(lastEventID:onEvent:)`` is what a subscriber wants: it reconnects after every drop (a closed connection,
/// a `5xx`, an idle timeout) with ``SSEReconnectPolicy`` backoff, always sending the last id it saw as
/// `Last-Event-ID` so the broker replays what was missed. It stops when its task is cancelled, when `onEvent`
/// throws, on a final answer (see ``BrokerClientError/isRetryable``), or after
/// ``SSEReconnectPolicy/maximumAttempts`` fruitless attempts.
public struct SSEClient: Sendable {
    /// What ``run(lastEventID:onEvent:)`` reports.
    public enum Event: Sendable {
        /// The server answered `200 text/event-stream`; `lastEventID` is the `Last-Event-ID` that was sent, if any.
        case connected(lastEventID: String?)
        /// An event of the stream, control frames (`connected`, `gap`) included.
        case message(SSEMessage)
        /// The connection ended (`error` is `nil` when the server ended the response cleanly); the next attempt
        /// starts after `reconnectDelay`.
        case disconnected(error: (any Error)?, reconnectDelay: Duration)
    }

    /// The stream's URL, query included.
    public var url: BrokerURL
    /// Extra request headers, such as `Authorization`.
    public var headers: [(String, String)]
    /// The most connecting may take.
    public var connectTimeout: Duration
    /// When set, a connection that reads nothing (not even a heartbeat comment) for this long is dropped with
    /// ``BrokerClientError/Code/idleTimeout``; pick a few heartbeat intervals.
    public var idleTimeout: Duration?
    public var reconnectPolicy: SSEReconnectPolicy

    /// The most body bytes read from a response that is not an event stream, for the error.
    static let maximumErrorBodyBytes = 64 * 1024

    public init(
        url: BrokerURL,
        headers: [(String, String)] = [],
        connectTimeout: Duration = .seconds(10),
        idleTimeout: Duration? = nil,
        reconnectPolicy: SSEReconnectPolicy = SSEReconnectPolicy()
    ) {
        self.url = url
        self.headers = headers
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.reconnectPolicy = reconnectPolicy
    }

    /// Reads one connection, calling `onMessage` for each event, and returns when the server ends the response.
    /// - Parameters:
    ///   - lastEventID: Sent as `Last-Event-ID` unless `nil` or empty.
    ///   - onMessage: Called for each event in order; the next bytes are not read until it returns. What it
    ///     throws ends the connection and is rethrown.
    /// - Returns: The parser at the end of the stream, for its ``SSEParser/lastEventID`` and ``SSEParser/retry``.
    @discardableResult
    public func connect(
        lastEventID: String? = nil,
        onMessage: (SSEMessage) async throws -> Void
    ) async throws -> SSEParser {
        var parser = SSEParser(lastEventID: lastEventID ?? "")
        var delivered = 0
        do {
            try await self.stream(parser: &parser, delivered: &delivered, onConnected: {}, onMessage: onMessage)
        } catch let error as CallbackError {
            throw error.underlying
        }
        return parser
    }

    /// One connection's events as an `AsyncThrowingStream`, which finishes when the server ends the response and
    /// throws what the connection throws. Ending the iteration closes the connection.
    ///
    /// Events are buffered without bound if the consumer is slower than the network; use
    /// ``connect(lastEventID:onMessage:)`` to read only as fast as events are handled.
    public func messages(lastEventID: String? = nil) -> AsyncThrowingStream<SSEMessage, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: SSEMessage.self, throwing: (any Error).self)
        let task = Task {
            do {
                try await self.connect(lastEventID: lastEventID) { message in
                    continuation.yield(message)
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Follows the stream across reconnections until the task is cancelled, reporting each connection, event and
    /// drop to `onEvent`.
    /// - Parameters:
    ///   - lastEventID: Where to resume from; afterwards the last id seen is sent on every reconnection.
    ///   - onEvent: Called in order; the stream is not read while it runs. What it throws stops the loop and is
    ///     rethrown, so `throw` is how a caller stops after enough events.
    /// - Throws: `CancellationError` when the task is cancelled, what `onEvent` throws, a ``BrokerClientError``
    ///   that is not ``BrokerClientError/isRetryable``, or the last error once
    ///   ``SSEReconnectPolicy/maximumAttempts`` is exceeded.
    public func run(lastEventID: String? = nil, onEvent: (Event) async throws -> Void) async throws {
        var lastEventID = lastEventID ?? ""
        var serverRetry: Int?
        var failures = 0
        while true {
            try Task.checkCancellation()
            var parser = SSEParser(lastEventID: lastEventID)
            var delivered = 0
            var failure: (any Error)?
            let sentLastEventID = lastEventID.isEmpty ? nil : lastEventID
            do {
                try await self.stream(
                    parser: &parser,
                    delivered: &delivered,
                    onConnected: { try await onEvent(.connected(lastEventID: sentLastEventID)) },
                    onMessage: { try await onEvent(.message($0)) }
                )
            } catch let error as CallbackError {
                throw error.underlying
            } catch {
                failure = error
            }
            lastEventID = parser.lastEventID
            serverRetry = parser.retry ?? serverRetry
            try Task.checkCancellation()

            if let clientError = failure as? BrokerClientError, !clientError.isRetryable {
                throw clientError
            }
            if delivered > 0 {
                failures = 0
            }
            if let maximumAttempts = self.reconnectPolicy.maximumAttempts, failures >= maximumAttempts {
                throw failure
                    ?? BrokerClientError(.connectionClosed, "\(self.url) kept ending the stream without an event")
            }
            let delay = self.reconnectPolicy.delay(afterFailures: failures, serverRetry: serverRetry)
            failures += 1
            try await onEvent(.disconnected(error: failure, reconnectDelay: delay))
            try await Task.sleep(for: delay)
        }
    }

    /// Wraps what a caller's callback throws, so it is told apart from connection failures and rethrown as is.
    private struct CallbackError: Error {
        var underlying: any Error
    }

    /// Runs one connection through `parser`. `delivered` counts the events handed to `onMessage`; both stay
    /// updated when this throws.
    private func stream(
        parser: inout SSEParser,
        delivered: inout Int,
        onConnected: () async throws -> Void,
        onMessage: (SSEMessage) async throws -> Void
    ) async throws {
        var headers: [(String, String)] = [("Accept", "text/event-stream"), ("Cache-Control", "no-cache")]
        if !parser.lastEventID.isEmpty {
            headers.append(("Last-Event-ID", parser.lastEventID))
        }
        headers += self.headers
        let head = BrokerHTTPClient.makeRequestHead(method: "GET", url: self.url, headers: headers, bodyLength: nil)
        let channel = try await BrokerHTTPClient.connect(
            to: self.url,
            connectTimeout: self.connectTimeout,
            idleTimeout: self.idleTimeout
        )
        do {
            try await self.read(
                channel,
                head: head,
                parser: &parser,
                delivered: &delivered,
                onConnected: onConnected,
                onMessage: onMessage
            )
        } catch let error as BrokerClientError {
            throw error
        } catch let error as CallbackError {
            throw error
        } catch let error as CancellationError {
            throw error
        } catch {
            throw BrokerClientError(.connectionClosed, "Lost the connection to \(self.url.hostHeader) (\(error))")
        }
    }

    /// Sends the request on `channel` and reads the answer, closing the channel when done.
    private func read(
        _ channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>,
        head: HTTPRequestHead,
        parser: inout SSEParser,
        delivered: inout Int,
        onConnected: () async throws -> Void,
        onMessage: (SSEMessage) async throws -> Void
    ) async throws {
        try await channel.executeThenClose { inbound, outbound in
            var parts = inbound.makeAsyncIterator()
            // One write for the whole request, so a server that answers (and closes) as soon as it has the head
            // cannot make a separate `.end` write fail. If writing fails anyway, an answer already read still
            // counts; if the read side knows why the channel closed (an idle timeout that fired under load), that
            // is the error reported; otherwise the write's.
            var writeFailure: (any Error)?
            do {
                try await outbound.write(contentsOf: [.head(head), .end(nil)])
            } catch {
                writeFailure = error
            }

            guard case .head(let responseHead) = try await parts.next() else {
                if let writeFailure { throw writeFailure }
                throw BrokerClientError(.connectionClosed, "\(self.url) closed the connection without answering")
            }
            guard responseHead.status == .ok, Self.isEventStream(responseHead.headers) else {
                let body = try await Self.collectBody(&parts)
                let contentType = responseHead.headers.first(name: "Content-Type") ?? "no content type"
                throw BrokerClientError(
                    .unexpectedResponse,
                    "\(self.url) answered \(responseHead.status.code) (\(contentType)) instead of an event stream",
                    status: Int(responseHead.status.code),
                    body: body
                )
            }
            do {
                try await onConnected()
            } catch {
                throw CallbackError(underlying: error)
            }
            while let part = try await parts.next() {
                switch part {
                case .head:
                    continue
                case .body(let buffer):
                    for message in parser.feed(buffer.readableBytesView) {
                        delivered += 1
                        do {
                            try await onMessage(message)
                        } catch {
                            throw CallbackError(underlying: error)
                        }
                    }
                case .end:
                    return
                }
            }
            throw BrokerClientError(.connectionClosed, "\(self.url) closed the connection in the middle of the stream")
        }
    }

    /// Whether the `Content-Type` is `text/event-stream`, parameters such as `charset` allowed.
    static func isEventStream(_ headers: HTTPHeaders) -> Bool {
        guard let contentType = headers.first(name: "Content-Type") else { return false }
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first ?? ""
        return mediaType.trimmingSpaces().lowercased() == "text/event-stream"
    }

    /// Reads the rest of a response body as text, at most ``maximumErrorBodyBytes`` of it.
    private static func collectBody(
        _ parts: inout NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    ) async throws -> String {
        var body = ByteBuffer()
        while let part = try await parts.next() {
            switch part {
            case .head:
                continue
            case .body(var chunk):
                body.writeBuffer(&chunk)
                if body.readableBytes >= Self.maximumErrorBodyBytes {
                    return String(decoding: body.readableBytesView.prefix(Self.maximumErrorBodyBytes), as: UTF8.self)
                }
            case .end:
                return String(buffer: body)
            }
        }
        return String(buffer: body)
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var text = self
        while text.first == " " || text.first == "\t" {
            text = text.dropFirst()
        }
        while text.last == " " || text.last == "\t" {
            text = text.dropLast()
        }
        return text
    }
}
