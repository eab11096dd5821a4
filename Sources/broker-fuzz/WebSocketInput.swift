/// The WebSocket target's input: a flags byte, then either raw client frames or text messages that get framed here.
///
/// ```
/// flags bit 0   0: the payload is raw frames, sent as they are (masked or not, any opcode, any length field)
///               1: the payload is messages, one a line, each sent as a masked text frame
/// flags bit 1   offer permessage-deflate in the upgrade (raw frames with RSV1 then reach the inflater)
/// flags bit 2   upgrade to /api/ws?topic=news (subscribed from the start) instead of /api/ws
/// flags bit 3   with messages: send each as two fragments, a text frame and a continuation
/// ```
/// Every line (or the whole payload, when raw) is also decoded directly with `WebSocketMessage.decode`.
struct WebSocketInput {
    /// The RFC 6455 example key; the server's answer is fixed by it.
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="
    /// The masking key of framed messages.
    static let mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]

    let flags: UInt8
    let payload: ArraySlice<UInt8>

    var isFramed: Bool { self.flags & 0x01 != 0 }
    var offersDeflate: Bool { self.flags & 0x02 != 0 }
    var subscribesAtUpgrade: Bool { self.flags & 0x04 != 0 }
    var fragments: Bool { self.flags & 0x08 != 0 }

    /// The handshake request, complete.
    var upgradeRequest: [UInt8] {
        var request = "GET /api/ws\(self.subscribesAtUpgrade ? "?topic=news" : "") HTTP/1.1\r\nHost: broker\r\n"
        request += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        request += "Sec-WebSocket-Key: \(Self.key)\r\n"
        if self.offersDeflate { request += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" }
        return Array((request + "\r\n").utf8)
    }

    /// The texts to decode directly: each line when framed, else the whole payload.
    var messages: [ArraySlice<UInt8>] {
        self.isFramed ? self.lines : [self.payload]
    }

    /// What goes on the wire after the upgrade.
    var frames: [UInt8] {
        guard self.isFramed else { return Array(self.payload) }
        var bytes: [UInt8] = []
        for line in self.lines {
            if self.fragments {
                let middle = line.startIndex + line.count / 2
                bytes += Self.frame(opcode: 0x1, fin: false, payload: line[..<middle])
                bytes += Self.frame(opcode: 0x0, fin: true, payload: line[middle...])
            } else {
                bytes += Self.frame(opcode: 0x1, fin: true, payload: line)
            }
        }
        return bytes
    }

    private var lines: [ArraySlice<UInt8>] {
        self.payload.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
    }

    /// One masked client frame.
    static func frame(opcode: UInt8, fin: Bool, payload: ArraySlice<UInt8>) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        if payload.count < 126 {
            bytes.append(0x80 | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            bytes += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            bytes.append(0x80 | 127)
            bytes += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        bytes += Self.mask
        for (index, byte) in payload.enumerated() { bytes.append(byte ^ Self.mask[index % 4]) }
        return bytes
    }
}
