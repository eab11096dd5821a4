/// Splits the bench WebSocket subscriber's byte stream, after the `101`, into server frames (RFC 6455, unmasked),
/// without building strings.
///
/// ```
/// 0x81 <len: 1, 3 or 9 bytes> {"type":"event","topic":"bench-0","data":"<publisher> <sequence> <sent ns> xxxx…","id":"…"}
/// 0x89 0x00                      (a ping, answered by the handler)
/// ```
/// For each frame it hands out the opcode and the first ``payloadHeadBytes`` bytes of its payload, enough to find
/// the bench's event header; the rest of a long payload is skipped. A payload that lies in one read is handed out
/// as a slice of it, with no copy; only one that spans reads has its head collected in a small reusable buffer.
/// Frames are taken as they come: the broker sends every message in one frame.
struct WebSocketFrameScanner {
    enum Error: Swift.Error, Equatable {
        /// A masked server frame, which RFC 6455 forbids.
        case maskedServerFrame
    }

    /// How many bytes of each payload ``feed(_:onFrame:)`` hands out.
    static let payloadHeadBytes = 192

    /// The header bytes read so far while between frames (2 to 10 of them).
    private var header: [UInt8] = []
    /// Payload bytes still to come in the current frame; nil between frames.
    private var remaining: Int?
    private var opcode: UInt8 = 0
    /// The head of a payload that began in an earlier read.
    private var payloadHead: [UInt8] = []

    init() {
        self.header.reserveCapacity(10)
        self.payloadHead.reserveCapacity(Self.payloadHeadBytes)
    }

    /// Decodes the next bytes.
    ///
    /// - Parameters:
    ///   - onFrame: Called with each frame's opcode and the first at most ``payloadHeadBytes`` bytes of its payload,
    ///     valid only during the call.
    mutating func feed(
        _ bytes: UnsafeRawBufferPointer, onFrame: (UInt8, UnsafeRawBufferPointer) -> Void
    ) throws(WebSocketFrameScanner.Error) {
        var index = 0
        while index < bytes.count {
            guard let remaining = self.remaining else {
                index = try self.readHeader(bytes, from: index, onFrame: onFrame)
                continue
            }
            let count = min(remaining, bytes.count - index)
            let piece = UnsafeRawBufferPointer(rebasing: bytes[index..<(index + count)])
            index += count
            if count == remaining && self.payloadHead.isEmpty {
                self.remaining = nil
                onFrame(self.opcode, UnsafeRawBufferPointer(rebasing: piece.prefix(Self.payloadHeadBytes)))
                continue
            }
            let room = Self.payloadHeadBytes - self.payloadHead.count
            if room > 0 { self.payloadHead.append(contentsOf: piece.prefix(room)) }
            if count == remaining {
                self.remaining = nil
                self.payloadHead.withUnsafeBytes { onFrame(self.opcode, $0) }
                self.payloadHead.removeAll(keepingCapacity: true)
            } else {
                self.remaining = remaining - count
            }
        }
    }

    /// Reads header bytes from `start`; once the header is whole, starts the payload (or hands out an empty frame).
    /// Returns the index after the bytes it took.
    private mutating func readHeader(
        _ bytes: UnsafeRawBufferPointer, from start: Int, onFrame: (UInt8, UnsafeRawBufferPointer) -> Void
    ) throws(WebSocketFrameScanner.Error) -> Int {
        var index = start
        while index < bytes.count {
            self.header.append(bytes[index])
            index += 1
            guard self.header.count >= 2 else { continue }
            guard self.header[1] & 0x80 == 0 else { throw .maskedServerFrame }
            let lengthCode = Int(self.header[1] & 0x7F)
            let headerBytes = lengthCode == 127 ? 10 : lengthCode == 126 ? 4 : 2
            guard self.header.count == headerBytes else { continue }
            var length = lengthCode
            if headerBytes > 2 { length = self.header[2...].reduce(0) { $0 << 8 | Int($1) } }
            self.opcode = self.header[0] & 0x0F
            self.header.removeAll(keepingCapacity: true)
            if length == 0 {
                onFrame(self.opcode, UnsafeRawBufferPointer(start: nil, count: 0))
            } else {
                self.remaining = length
            }
            return index
        }
        return index
    }
}

extension WebSocketFrameScanner {
    private static let dataMarker: [UInt8] = Array(#""data":""#.utf8)

    /// Parses the bench's header from an `event` message: the numbers at the start of its `data` string.
    ///
    /// - Parameters:
    ///   - payload: A text frame's payload head, as ``feed(_:onFrame:)`` hands it out.
    /// - Returns: The numbers, or nil when the message is not one of the bench's events.
    static func parseEventMessage(_ payload: UnsafeRawBufferPointer) -> EventStreamScanner.DataLine? {
        let marker = Self.dataMarker
        guard payload.count > marker.count else { return nil }
        for start in 0...(payload.count - marker.count)
        where payload[start] == marker[0] && payload[start..<(start + marker.count)].elementsEqual(marker) {
            return EventStreamScanner.parseNumbers(payload, from: start + marker.count)
        }
        return nil
    }
}
