import Testing

@testable import BrokerBench

@Suite struct WebSocketFrameScannerTests {
    /// An unmasked server frame.
    static func frame(opcode: UInt8, _ payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            bytes.append(UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            bytes += [126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            bytes.append(127)
            bytes += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        return bytes + payload
    }

    static let event = Array(#"{"type":"event","topic":"bench-1","data":"3 41 123456789 xxxx","id":"17"}"#.utf8)
    static let long = Array(#"{"type":"event","data":"1 2 3 "#.utf8) + [UInt8](repeating: 0x78, count: 70_000)
    static let stream =
        Self.frame(opcode: 0x1, Self.event) + Self.frame(opcode: 0x9, []) + Self.frame(opcode: 0x1, Self.long)
        + Self.frame(opcode: 0x1, [UInt8](repeating: 0x79, count: 300))

    static func scan(_ pieces: [ArraySlice<UInt8>]) throws -> [(UInt8, [UInt8])] {
        var scanner = WebSocketFrameScanner()
        var frames: [(UInt8, [UInt8])] = []
        for piece in pieces {
            try Array(piece).withUnsafeBytes { bytes in
                try scanner.feed(bytes) { opcode, head in frames.append((opcode, Array(head))) }
            }
        }
        return frames
    }

    static var expected: [(UInt8, [UInt8])] {
        [
            (0x1, Self.event), (0x9, []), (0x1, Array(Self.long.prefix(192))),
            (0x1, [UInt8](repeating: 0x79, count: 192)),
        ]
    }

    static func same(_ a: [(UInt8, [UInt8])], _ b: [(UInt8, [UInt8])]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    @Test func handsOutEveryFrameHeadWhereverAReadEnds() throws {
        let bytes = Self.stream
        #expect(Self.same(try Self.scan([bytes[...]]), Self.expected))
        // Every split in the first 600 bytes and around the 64-bit length, and one read per byte.
        for split in Array(0...600) + Array(bytes.count - 400...bytes.count) {
            #expect(Self.same(try Self.scan([bytes[..<split], bytes[split...]]), Self.expected), "split at \(split)")
        }
        #expect(Self.same(try Self.scan(bytes.indices.map { bytes[$0...$0] }), Self.expected))
    }

    @Test func refusesAMaskedServerFrame() {
        #expect(throws: WebSocketFrameScanner.Error.maskedServerFrame) {
            _ = try Self.scan([[0x81, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 0][...]])
        }
    }

    @Test func parsesTheBenchHeaderFromAnEventMessage() {
        let parsed = Self.event.withUnsafeBytes { WebSocketFrameScanner.parseEventMessage($0) }
        #expect(parsed?.publisher == 3)
        #expect(parsed?.sequence == 41)
        #expect(parsed?.sentNanoseconds == 123_456_789)
        for text in [#"{"type":"ack","id":"1"}"#, #"{"type":"event","data":{"n":1}}"#, #"{"data":"x 1 2"}"#, ""] {
            #expect(Array(text.utf8).withUnsafeBytes { WebSocketFrameScanner.parseEventMessage($0) } == nil, "\(text)")
        }
    }
}
