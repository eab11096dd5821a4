import NIOCore

/// Encodes a published event as a complete, unmasked RFC 6455 text frame carrying the broker's `event` message,
/// ready to write to every WebSocket that receives it.
///
/// ```
/// 0x81 <length: 1, 3 or 9 bytes>                     (FIN, text; server frames are never masked)
/// {"type":"event","topic":"orders","event":"created","data":{"id":42},"id":"1763780248000001"}
/// ```
/// `event` is present only when the event has a type, `topics` only when it went to several topics (`topic` is
/// then the first), and a direct message has no topic. `data` is the published JSON value as it was published, or
/// a JSON string for text. The id comes last, so everything before it can be encoded before the id is known (see
/// ``prepare(topics:eventType:data:dataIsJSON:allocator:)``).
public enum WebSocketEventFrame {
    /// The part of an event's frame that does not depend on its id, encoded before the bus lock is taken.
    public struct PreparedEvent: Sendable {
        /// Room in front for the longest frame header: 2 bytes and a 64-bit length.
        static let headroom = 10
        /// Room behind for `"` + 20 digits + `"}`.
        static let tailroom = 23
        private var frame: ByteBuffer

        fileprivate init(frame: ByteBuffer) {
            self.frame = frame
        }

        /// Appends the id and the object's end, writes the frame header into the room in front, and returns the
        /// frame: a view from the header on, sharing storage (reader index 0, no copy).
        public consuming func finish(id: EventID) -> ByteBuffer {
            self.frame.writeDecimal(id.rawValue)
            self.frame.writeStaticString("\"}")
            let payloadBytes = self.frame.writerIndex - Self.headroom
            let headerBytes = WebSocketEventFrame.headerBytes(payloadBytes: payloadBytes)
            let start = Self.headroom - headerBytes
            WebSocketEventFrame.setHeader(
                opcode: 0x1, payloadBytes: payloadBytes, into: &self.frame, at: start)
            self.frame.moveReaderIndex(to: start)
            return self.frame.slice()
        }
    }

    public static func encode(
        id: EventID, topics: [TopicName], eventType: String?, data: String, dataIsJSON: Bool,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        Self.prepare(topics: topics, eventType: eventType, data: data, dataIsJSON: dataIsJSON, allocator: allocator)
            .finish(id: id)
    }

    public static func prepare(
        topics: [TopicName], eventType: String?, data: String, dataIsJSON: Bool, allocator: ByteBufferAllocator
    ) -> PreparedEvent {
        var json = "{\"type\":\"event\""
        json.reserveCapacity(data.utf8.count + 64)
        if let first = topics.first {
            json += ",\"topic\":"
            JSONValue.writeString(first.value, to: &json)
        }
        if topics.count > 1 {
            json += ",\"topics\":["
            for (index, topic) in topics.enumerated() {
                if index > 0 { json += "," }
                JSONValue.writeString(topic.value, to: &json)
            }
            json += "]"
        }
        if let eventType {
            json += ",\"event\":"
            JSONValue.writeString(eventType, to: &json)
        }
        json += ",\"data\":"
        if dataIsJSON {
            json += data
        } else {
            JSONValue.writeString(data, to: &json)
        }
        json += ",\"id\":\""
        var frame = allocator.buffer(
            capacity: PreparedEvent.headroom + json.utf8.count + PreparedEvent.tailroom)
        frame.moveWriterIndex(forwardBy: PreparedEvent.headroom)
        frame.writeString(json)
        return PreparedEvent(frame: frame)
    }

    /// The bytes of a server frame header (no mask) for a payload of `payloadBytes`.
    public static func headerBytes(payloadBytes: Int) -> Int {
        payloadBytes < 126 ? 2 : payloadBytes <= 0xFFFF ? 4 : 10
    }

    /// Writes a final, unmasked frame header at `index`, within the written bytes of `buffer`.
    ///
    /// - Parameters:
    ///   - opcode: The frame's opcode (0x1 text, 0x8 close, 0x9 ping, 0xA pong).
    ///   - rsv1: Set for a message compressed with permessage-deflate.
    public static func setHeader(
        opcode: UInt8, rsv1: Bool = false, payloadBytes: Int, into buffer: inout ByteBuffer, at index: Int
    ) {
        buffer.setInteger(0x80 | (rsv1 ? 0x40 : 0) | opcode, at: index)
        switch Self.headerBytes(payloadBytes: payloadBytes) {
        case 2:
            buffer.setInteger(UInt8(payloadBytes), at: index + 1)
        case 4:
            buffer.setInteger(UInt8(126), at: index + 1)
            buffer.setInteger(UInt16(payloadBytes), at: index + 2)
        default:
            buffer.setInteger(UInt8(127), at: index + 1)
            buffer.setInteger(UInt64(payloadBytes), at: index + 2)
        }
    }

    /// The payload of a complete frame from this encoder: a view past its header, sharing storage.
    public static func payload(of frame: ByteBuffer) -> ByteBuffer {
        guard let lengthCode = frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self) else { return ByteBuffer() }
        let headerBytes = lengthCode == 127 ? 10 : lengthCode == 126 ? 4 : 2
        return frame.getSlice(at: frame.readerIndex + headerBytes, length: frame.readableBytes - headerBytes)
            ?? ByteBuffer()
    }

    /// A complete unmasked server frame: the header, then `payload`.
    public static func frame(
        opcode: UInt8, rsv1: Bool = false, payload: ByteBuffer, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let headerBytes = Self.headerBytes(payloadBytes: payload.readableBytes)
        var frame = allocator.buffer(capacity: headerBytes + payload.readableBytes)
        frame.moveWriterIndex(forwardBy: headerBytes)
        Self.setHeader(opcode: opcode, rsv1: rsv1, payloadBytes: payload.readableBytes, into: &frame, at: 0)
        frame.writeImmutableBuffer(payload)
        return frame
    }
}
