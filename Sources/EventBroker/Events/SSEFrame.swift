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

    /// A published event's frame: one allocation, the id and chunk-size lines written into room kept in front.
    public static func encode(
        id: EventID, event: String?, data: String, retry: Int? = nil, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        Self.prepare(event: event, data: data, retry: retry, allocator: allocator).finish(id: id)
    }

    /// The part of an event's frame that does not depend on its id, encoded before the id is known, so the bus
    /// lock is held only for ``PreparedEvent/finish(id:)``.
    public static func prepare(event: String?, data: String, retry: Int? = nil, allocator: ByteBufferAllocator)
        -> PreparedEvent
    {
        let capacity = PreparedEvent.headroom + data.utf8.count + (event?.utf8.count ?? 0) + 48
        var frame = allocator.buffer(capacity: capacity)
        frame.moveWriterIndex(forwardBy: PreparedEvent.headroom)
        if let retry {
            frame.writeStaticString("retry: ")
            frame.writeDecimal(UInt64(clamping: retry))
            frame.writeStaticString("\n")
        }
        let lines = Self.writeBody(event: event, data: data, into: &frame)
        frame.writeStaticString("\r\n")
        return PreparedEvent(frame: frame, holdsDataVerbatim: lines == 1)
    }

    /// An event frame without its first lines: `id:`, and the chunk-size line in front of it.
    public struct PreparedEvent: Sendable {
        /// Room for `id: ` with up to 20 digits and `\n` (25 bytes), and up to 16 hex digits and CRLF (18).
        static let headroom = 43
        /// What ends the chunk-size line and begins the id line.
        private static let idLinePrefix: StaticString = "\r\nid: "
        private var frame: ByteBuffer
        /// The data is written in one `data:` line, so the finished chunk ends with it, then `\n\n\r\n`: it can be
        /// read back from there (see ``SSEFrame/data(in:bytes:)``).
        public let holdsDataVerbatim: Bool

        fileprivate init(frame: ByteBuffer, holdsDataVerbatim: Bool) {
            self.frame = frame
            self.holdsDataVerbatim = holdsDataVerbatim
        }

        /// Writes the `id:` line and the chunk-size line into the room in front, in place, and returns the
        /// complete chunk: a view from the size line on, sharing storage (reader index 0, no copy).
        public consuming func finish(id: EventID) -> ByteBuffer {
            let bodyStart = Self.headroom
            let idDigits = ByteBuffer.decimalDigits(id.rawValue)
            let idStart = bodyStart - 5 - idDigits  // "id: " digits "\n"
            let payloadBytes = UInt64(self.frame.writerIndex - 2 - idStart)  // the chunk's data, without its CRLF
            let hexDigits = ByteBuffer.hexDigits(payloadBytes)
            let sizeStart = idStart - hexDigits - 2
            // `<hex>\r\nid: <digits>\n`, composed on the stack and set in one copy: this runs under the bus lock.
            var scratch: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)  // 48 >= headroom
            withUnsafeMutableBytes(of: &scratch) { bytes in
                var position = 0
                func append(_ part: UnsafeRawBufferPointer) {
                    UnsafeMutableRawBufferPointer(rebasing: bytes[position..<(position + part.count)]).copyMemory(
                        from: part)
                    position += part.count
                }
                ByteBuffer.withDigits(of: payloadBytes, radix: 16, count: hexDigits, append)
                append(
                    UnsafeRawBufferPointer(
                        start: Self.idLinePrefix.utf8Start, count: Self.idLinePrefix.utf8CodeUnitCount))
                ByteBuffer.withDigits(of: id.rawValue, radix: 10, append)
                bytes[position] = UInt8(ascii: "\n")
                self.frame.setBytes(UnsafeRawBufferPointer(rebasing: bytes[0...position]), at: sizeStart)
            }
            self.frame.moveReaderIndex(to: sizeStart)
            return self.frame.slice()
        }
    }

    /// A control frame without an id (`connected`, `gap`), so it never moves the client's resume point.
    public static func control(event: String, data: String, retry: Int? = nil, allocator: ByteBufferAllocator)
        -> ByteBuffer
    {
        var payload = allocator.buffer(capacity: data.utf8.count + 48)
        if let retry {
            payload.writeStaticString("retry: ")
            payload.writeDecimal(UInt64(clamping: retry))
            payload.writeStaticString("\n")
        }
        Self.writeBody(event: event, data: data, into: &payload)
        return Self.chunk(payload, allocator: allocator)
    }

    /// A lone `retry:` hint, sent before a stream is closed so the client reconnects after `milliseconds`.
    public static func retryHint(milliseconds: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var payload = allocator.buffer(capacity: 24)
        payload.writeStaticString("retry: ")
        payload.writeDecimal(UInt64(clamping: milliseconds))
        payload.writeStaticString("\n\n")
        return Self.chunk(payload, allocator: allocator)
    }

    /// The data of an event chunk that holds it verbatim (``PreparedEvent/holdsDataVerbatim``), `bytes` long: the
    /// bytes in front of the chunk's closing `\n\n\r\n`.
    public static func data(in chunk: ByteBuffer, bytes: Int) -> String {
        chunk.getString(at: chunk.readerIndex + chunk.readableBytes - 4 - bytes, length: bytes)!
    }

    /// Writes the `event:` line and the `data:` lines; returns how many `data:` lines.
    @discardableResult
    private static func writeBody(event: String?, data: String, into payload: inout ByteBuffer) -> Int {
        if let event {
            payload.writeStaticString("event: ")
            payload.writeString(event)
            payload.writeStaticString("\n")
        }
        // One `data:` line per line; CR, LF and CRLF all end a line, as the WHATWG parser reads them. Scanned as
        // contiguous bytes: no string index per byte.
        var data = data
        return data.withUTF8 { bytes in
            var lines = 1
            var lineStart = 0
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                guard byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") else {
                    index += 1
                    continue
                }
                payload.writeStaticString("data: ")
                payload.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[lineStart..<index])))
                payload.writeStaticString("\n")
                lines += 1
                index += 1
                if byte == UInt8(ascii: "\r"), index < bytes.count, bytes[index] == UInt8(ascii: "\n") { index += 1 }
                lineStart = index
            }
            payload.writeStaticString("data: ")
            payload.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[lineStart..<bytes.count])))
            payload.writeStaticString("\n\n")
            return lines
        }
    }

    static func chunk(_ text: String) -> ByteBuffer {
        Self.chunk(ByteBuffer(string: text), allocator: ByteBufferAllocator())
    }

    /// Wraps `payload` in HTTP/1.1 chunk framing.
    public static func chunk(_ payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var chunk = allocator.buffer(capacity: payload.readableBytes + 12)
        let hexDigits = ByteBuffer.hexDigits(UInt64(payload.readableBytes))
        chunk.moveWriterIndex(forwardBy: hexDigits)
        chunk.setHex(UInt64(payload.readableBytes), digits: hexDigits, at: 0)
        chunk.writeStaticString("\r\n")
        chunk.writeImmutableBuffer(payload)
        chunk.writeStaticString("\r\n")
        return chunk
    }
}
