/// A failure of ``BrokerHTTPClient``, ``SSEClient`` or ``WebSocketClient``: no connection, a timeout, a connection
/// that closed before the response was complete, or an answer that was not what was asked for.
///
/// Codes are `static let`s on ``Code``, so new ones can be added without breaking callers that `switch`.
/// An ``Code/unexpectedResponse`` carries the HTTP status and the body text, so a caller can show the broker's
/// `{"error":{"code":…,"message":…}}` answer; a WebSocket closed by the server carries its close code.
public struct BrokerClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case connectionFailed, timeout, idleTimeout, connectionClosed, unexpectedResponse, responseTooLarge
            case invalidMessage
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// No connection could be made: refused, unreachable, unknown host, or no answer within the connect timeout.
        public static let connectionFailed = Code(.connectionFailed)
        /// The whole request took longer than its timeout.
        public static let timeout = Code(.timeout)
        /// An event stream sent no bytes (not even a heartbeat) for longer than its idle timeout.
        public static let idleTimeout = Code(.idleTimeout)
        /// The server closed the connection before the response was complete.
        public static let connectionClosed = Code(.connectionClosed)
        /// A WebSocket message broke the protocol: binary, not UTF-8, badly fragmented or too long (RFC 6455), or not
        /// a JSON object with a string `type` (the broker's protocol).
        public static let invalidMessage = Code(.invalidMessage)
        /// The status or content type was not the expected one; see ``BrokerClientError/status``.
        public static let unexpectedResponse = Code(.unexpectedResponse)
        /// The response body was larger than the client accepts.
        public static let responseTooLarge = Code(.responseTooLarge)

        public var description: String {
            switch self.value {
            case .connectionFailed: "connection_failed"
            case .timeout: "timeout"
            case .idleTimeout: "idle_timeout"
            case .connectionClosed: "connection_closed"
            case .unexpectedResponse: "unexpected_response"
            case .responseTooLarge: "response_too_large"
            case .invalidMessage: "invalid_message"
            }
        }
    }

    public var code: Code
    /// A sentence saying what happened.
    public var message: String
    /// The HTTP status of the response, when there was one.
    public var status: Int?
    /// The response body as text (possibly truncated), when there was one.
    public var body: String?
    /// The status code of the broker's close frame that ended a WebSocket (`1000` normal, `1001` going away, …;
    /// `1005` when the frame had none), or `nil` when no close frame ended it.
    public var closeCode: Int?

    public init(_ code: Code, _ message: String, status: Int? = nil, body: String? = nil, closeCode: Int? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.body = body
        self.closeCode = closeCode
    }

    /// Whether a reconnecting client should try again. Answers a browser's `EventSource` also treats as final
    /// are not retried: `204`, other `2xx` or a `200` that is not `text/event-stream`, and `4xx` except `408` and
    /// `429` (a bad topic stays bad). Everything else (timeouts, drops, `5xx`) is worth another try.
    public var isRetryable: Bool {
        guard self.code == .unexpectedResponse, let status = self.status else { return true }
        switch status {
        case 200..<300: return false
        case 408, 429: return true
        case 400..<500: return false
        default: return true
        }
    }

    public var description: String {
        guard let body = self.body, !body.isEmpty else { return self.message }
        return self.message + ": " + String(body.prefix(500))
    }
}
