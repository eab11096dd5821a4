import EventBroker
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// The opening handshake of `/api/ws` (RFC 6455 §4.2): checks the request, computes `Sec-WebSocket-Accept` with
/// NIOWebSocket's upgrader, and builds the `101 Switching Protocols` answer as raw bytes (no response encoder sits
/// in the broker's pipeline).
///
/// ```
/// GET /api/ws?topic=orders HTTP/1.1          HTTP/1.1 101 Switching Protocols
/// Upgrade: websocket                         Upgrade: websocket
/// Connection: Upgrade                        Connection: Upgrade
/// Sec-WebSocket-Version: 13                  Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
/// Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==
/// ```
/// A refused handshake is a JSON error: `426` (with `Upgrade: websocket` or `Sec-WebSocket-Version: 13`) when the
/// request is not a version-13 upgrade, `400` for a bad key or topic. The parser stops reading after an upgrade
/// request, so every refusal closes the connection.
enum WebSocketUpgrade {
    /// Checks the handshake headers.
    static func validate(_ head: HTTPRequestHead) throws(APIError) {
        let upgrade = head.headers[canonicalForm: "upgrade"].map { $0.lowercased() }
        guard upgrade.contains("websocket") else {
            var error = APIError(
                .upgradeRequired, "upgrade_required",
                "This endpoint speaks WebSocket: send 'Upgrade: websocket' and 'Connection: Upgrade'.")
            error.headers = [("Upgrade", "websocket")]
            error.closesConnection = true
            throw error
        }
        let connection = head.headers[canonicalForm: "connection"].map { $0.lowercased() }
        guard connection.contains("upgrade") else {
            throw Self.refusal(.badRequest, "bad_upgrade", "An upgrade request needs 'Connection: Upgrade'.")
        }
        guard head.headers.first(name: "sec-websocket-version") == "13" else {
            var error = APIError(
                .upgradeRequired, "unsupported_websocket_version", "Only WebSocket version 13 is supported.")
            error.headers = [("Sec-WebSocket-Version", "13")]
            error.closesConnection = true
            throw error
        }
        let keys = head.headers["sec-websocket-key"]
        guard keys.count == 1, let key = keys.first, Self.isValidKey(key) else {
            throw Self.refusal(
                .badRequest, "invalid_websocket_key", "Sec-WebSocket-Key must be one base64-encoded 16-byte nonce.")
        }
    }

    /// A 16-byte nonce in base64 is 24 characters, the last two `==`.
    private static func isValidKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard bytes.count == 24, bytes[22] == UInt8(ascii: "="), bytes[23] == UInt8(ascii: "=") else { return false }
        return bytes[..<22].allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                return true
            default:
                return false
            }
        }
    }

    static func refusal(_ status: HTTPResponseStatus, _ code: String, _ message: String) -> APIError {
        var error = APIError(status, code, message)
        error.closesConnection = true
        return error
    }

    /// Computes the response headers (`Sec-WebSocket-Accept` among them) with NIOWebSocket's server upgrader.
    /// The future is already complete when the request passed ``validate(_:)``.
    static func responseHeaders(for head: HTTPRequestHead, channel: any Channel) -> EventLoopFuture<HTTPHeaders> {
        Self.upgrader.buildUpgradeResponse(channel: channel, upgradeRequest: head, initialResponseHeaders: [:])
    }

    /// Used only for the handshake's headers: the broker installs its own handlers after the `101`.
    private static let upgrader = NIOWebSocketServerUpgrader(
        maxFrameSize: 1 << 14, automaticErrorHandling: false,
        shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture([:]) },
        upgradePipelineHandler: { channel, _ in channel.eventLoop.makeSucceededVoidFuture() })

    /// The `101` answer with `headers` (from ``responseHeaders(for:channel:)``) and `extraHeaders` (CORS).
    static func switchingProtocols(
        headers: HTTPHeaders, extraHeaders: [(String, String)], allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 256)
        buffer.writeStaticString("HTTP/1.1 101 Switching Protocols\r\n")
        for (name, value) in headers {
            let canonical = name.lowercased() == "connection" ? "Connection" : name
            buffer.writeString(canonical)
            buffer.writeStaticString(": ")
            buffer.writeString(name.lowercased() == "connection" ? "Upgrade" : value)
            buffer.writeStaticString("\r\n")
        }
        for (name, value) in extraHeaders {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
        return buffer
    }
}
