import NIOCore

/// Encodes Server-Sent Events frames as complete HTTP/1.1 chunks, ready to write to a socket.
///
/// ```
/// <hex length>\r\n
/// id: 1763780248000001\n
/// event: update\n          (only when set)
/// data: first line\n       (one per line of data; CR, LF and CRLF all end a line)
/// data: second line\n
/// \n
/// \r\n
/// ```
/// Lines end in LF only and no byte-order mark is ever written.
public enum SSEFrame {
    /// Ends a chunked response.
    public static let lastChunk: ByteBuffer = ByteBuffer(string: "0\r\n\r\n")
    /// The heartbeat comment, as one chunk. Comments are ignored by clients but keep proxies from timing out.
    public static let heartbeat: ByteBuffer = chunk(": hb\n\n")

    /// A published event's frame: one allocation, the chunk-size line written into room kept in front.
    public static func encode(
        id: EventID, event: String?, data: String, retry: Int? = nil, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let prefixRoom = 10  // up to 8 hex digits and CRLF
        var frame = allocator.buffer(capacity: prefixRoom + data.utf8.count + (event?.utf8.count ?? 0) + 64)
        frame.moveWriterIndex(forwardBy: prefixRoom)
        if let retry {
            frame.writeStaticString("retry: ")
            frame.writeString(String(retry))
            frame.writeStaticString("\n")
        }
        frame.writeStaticString("id: ")
        frame.writeString(id.description)
        frame.writeStaticString("\n")
        Self.writeBody(event: event, data: data, into: &frame)
        let payloadBytes = frame.writerIndex - prefixRoom
        frame.writeStaticString("\r\n")
        let sizeLine = String(payloadBytes, radix: 16) + "\r\n"
        let start = prefixRoom - sizeLine.utf8.count
        frame.setString(sizeLine, at: start)
        frame.moveReaderIndex(to: start)
        return frame.slice()  // a view from the size line on, sharing storage: reader index 0, no copy
    }

    /// A control frame without an id (`connected`, `gap`), so it never moves the client's resume point.
    public static func control(event: String, data: String, retry: Int? = nil, allocator: ByteBufferAllocator)
        -> ByteBuffer
    {
        var payload = allocator.buffer(capacity: data.utf8.count + 48)
        if let retry {
            payload.writeStaticString("retry: ")
            payload.writeString(String(retry))
            payload.writeStaticString("\n")
        }
        Self.writeBody(event: event, data: data, into: &payload)
        return Self.chunk(payload, allocator: allocator)
    }

    /// A lone `retry:` hint, sent before a stream is closed so the client reconnects after `milliseconds`.
    public static func retryHint(milliseconds: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var payload = allocator.buffer(capacity: 24)
        payload.writeStaticString("retry: ")
        payload.writeString(String(milliseconds))
        payload.writeStaticString("\n\n")
        return Self.chunk(payload, allocator: allocator)
    }

    private static func writeBody(event: String?, data: String, into payload: inout ByteBuffer) {
        if let event {
            payload.writeStaticString("event: ")
            payload.writeString(event)
            payload.writeStaticString("\n")
        }
        // One `data:` line per line; CR, LF and CRLF all end a line, as the WHATWG parser reads them.
        let bytes = data.utf8
        var lineStart = bytes.startIndex
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                payload.writeStaticString("data: ")
                payload.writeBytes(bytes[lineStart..<index])
                payload.writeStaticString("\n")
                var next = bytes.index(after: index)
                if byte == UInt8(ascii: "\r"), next != bytes.endIndex, bytes[next] == UInt8(ascii: "\n") {
                    next = bytes.index(after: next)
                }
                lineStart = next
                index = next
            } else {
                index = bytes.index(after: index)
            }
        }
        payload.writeStaticString("data: ")
        payload.writeBytes(bytes[lineStart..<bytes.endIndex])
        payload.writeStaticString("\n\n")
    }

    static func chunk(_ text: String) -> ByteBuffer {
        Self.chunk(ByteBuffer(string: text), allocator: ByteBufferAllocator())
    }

    /// Wraps `payload` in HTTP/1.1 chunk framing.
    public static func chunk(_ payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var chunk = allocator.buffer(capacity: payload.readableBytes + 12)
        chunk.writeString(String(payload.readableBytes, radix: 16))
        chunk.writeStaticString("\r\n")
        chunk.writeImmutableBuffer(payload)
        chunk.writeStaticString("\r\n")
        return chunk
    }
}
