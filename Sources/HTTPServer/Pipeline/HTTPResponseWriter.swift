import EventBroker
import NIOCore
import NIOHTTP1

/// Serializes a complete response (status line, headers, body) into one buffer: one write, one syscall.
///
/// The broker's answers are always small and complete, so it needs no streaming encoder; event streams write their
/// own raw bytes.
enum HTTPResponseWriter {
    /// Writes the response at the end of `buffer`, making room for it first: a buffer kept from an earlier answer
    /// and no longer shared is reused without an allocation.
    static func serialize(
        _ response: HTTPResponse, extraHeaders: [(String, String)], closes: Bool, keepAliveHeader: Bool,
        omitBody: Bool, into buffer: inout ByteBuffer
    ) {
        let bodyBytes = response.body?.utf8.count ?? 0
        buffer.reserveCapacity(minimumWritableBytes: 160 + bodyBytes + response.headers.count * 40)
        if response.status == .ok {
            buffer.writeStaticString("HTTP/1.1 200 OK\r\n")  // every publish's answer: one copy, not five
        } else {
            buffer.writeStaticString("HTTP/1.1 ")
            buffer.writeDecimal(UInt64(response.status.code))
            buffer.writeStaticString(" ")
            buffer.writeString(response.status.reasonPhrase)
            buffer.writeStaticString("\r\n")
        }
        for (name, value) in response.headers { Self.write(name, value, into: &buffer) }
        for (name, value) in extraHeaders { Self.write(name, value, into: &buffer) }
        if response.status != .noContent && response.status != .notModified {
            buffer.writeStaticString("Content-Length: ")
            buffer.writeDecimal(UInt64(bodyBytes))
            buffer.writeStaticString("\r\n")
        }
        if closes {
            buffer.writeStaticString("Connection: close\r\n")
        } else if keepAliveHeader {
            buffer.writeStaticString("Connection: keep-alive\r\n")
        }
        buffer.writeStaticString("\r\n")
        if let body = response.body, !omitBody { buffer.writeString(body) }
    }

    private static func write(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }
}
