import EventBroker

/// Raw WebSocket framing for tests that must send what no well-behaved client sends (unmasked frames, reserved
/// bits, unknown opcodes, a continuation out of place) and read the server's frames byte for byte.
extension RawConnection {
    struct Frame: Equatable {
        var fin = true
        var rsv1 = false
        var opcode: UInt8
        var payload: [UInt8]

        var text: String { String(decoding: self.payload, as: UTF8.self) }

        /// The close code of a close frame; nil for other frames or an empty close.
        var closeCode: UInt16? {
            guard self.opcode == 0x8, self.payload.count >= 2 else { return nil }
            return UInt16(self.payload[0]) << 8 | UInt16(self.payload[1])
        }

        /// A text frame's JSON.
        func json() throws -> JSONValue { try JSONParser.parse(self.payload) }
    }

    static let sampleKey = "dGhlIHNhbXBsZSBub25jZQ=="

    /// Sends an upgrade request for `target` and reads the answer's head.
    @discardableResult
    func upgrade(
        _ target: String = "/api/ws", extraHeaders: [(String, String)] = []
    ) throws -> (status: Int, headers: [(name: String, value: String)]) {
        var request =
            "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: \(Self.sampleKey)\r\n"
        for (name, value) in extraHeaders { request += "\(name): \(value)\r\n" }
        try self.send(request + "\r\n")
        return try self.readHead()
    }

    /// Sends one frame; masked unless told otherwise, as a client must.
    func sendFrame(
        opcode: UInt8, payload: [UInt8], fin: Bool = true, rsv1: Bool = false, masked: Bool = true
    ) throws {
        try self.send(Self.clientFrame(opcode: opcode, payload: payload, fin: fin, rsv1: rsv1, masked: masked))
    }

    /// The bytes of one client frame.
    static func clientFrame(
        opcode: UInt8, payload: [UInt8], fin: Bool = true, rsv1: Bool = false, masked: Bool = true
    ) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode]
        let maskBit: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            bytes.append(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            bytes.append(maskBit | 126)
            bytes += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            bytes.append(maskBit | 127)
            bytes += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        if masked {
            let mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
            bytes += mask
            bytes += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        } else {
            bytes += payload
        }
        return bytes
    }

    func sendText(_ text: String) throws {
        try self.sendFrame(opcode: 0x1, payload: Array(text.utf8))
    }

    /// Reads one server frame, checking that it is unmasked as RFC 6455 requires.
    func readFrame(timeout: Duration = .seconds(5)) throws -> Frame {
        let deadline = ContinuousClock.now + timeout
        let header = try self.readBytes(2, deadline: deadline)
        guard header[1] & 0x80 == 0 else { throw TimedOut(description: "the server sent a masked frame") }
        var length = Int(header[1] & 0x7F)
        if length == 126 {
            length = try self.readBytes(2, deadline: deadline).reduce(0) { $0 << 8 | Int($1) }
        } else if length == 127 {
            length = try self.readBytes(8, deadline: deadline).reduce(0) { $0 << 8 | Int($1) }
        }
        return Frame(
            fin: header[0] & 0x80 != 0, rsv1: header[0] & 0x40 != 0, opcode: header[0] & 0x0F,
            payload: try self.readBytes(length, deadline: deadline))
    }

    /// Reads frames until a text frame whose `type` is `type`, skipping pings; returns its JSON.
    func readMessage(type: String, timeout: Duration = .seconds(5)) throws -> JSONValue {
        let deadline = ContinuousClock.now + timeout
        while true {
            let frame = try self.readFrame(timeout: max(.milliseconds(1), deadline - .now))
            guard frame.opcode == 0x1 else { continue }
            let json = try frame.json()
            if case .string(type)? = json["type"] { return json }
        }
    }

    /// Reads frames until a close frame and returns its code (nil for an empty close).
    func readCloseCode(timeout: Duration = .seconds(5)) throws -> UInt16? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let frame = try self.readFrame(timeout: max(.milliseconds(1), deadline - .now))
            if frame.opcode == 0x8 { return frame.closeCode }
        }
    }
}
