import Foundation
import NIOCore
import Testing

@testable import HTTPServer

/// RFC 7692 `permessage-deflate`: the handshake negotiation, the RFC's byte examples, round trips, the inflate
/// limit, and a cross-check against Python's zlib.
@Suite struct PerMessageDeflateTests {
    // MARK: - Negotiation

    /// One `Sec-WebSocket-Extensions` request and the agreement the server answers with.
    struct NegotiationCase: CustomTestStringConvertible, Sendable {
        let name: String
        let headers: [String]
        let response: String?
        var parameters = PerMessageDeflate.Parameters()

        var testDescription: String { self.name }
    }

    static let negotiationCases: [NegotiationCase] = [
        NegotiationCase(
            name: "plain offer", headers: ["permessage-deflate"],
            response: "permessage-deflate; server_no_context_takeover"),
        NegotiationCase(
            name: "client_max_window_bits without a value is answered with 15",
            headers: ["permessage-deflate; client_max_window_bits"],
            response: "permessage-deflate; server_no_context_takeover; client_max_window_bits=15"),
        NegotiationCase(
            name: "client_max_window_bits=10 is echoed", headers: ["permessage-deflate; client_max_window_bits=10"],
            response: "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
            parameters: .init(clientMaxWindowBits: 10)),
        NegotiationCase(
            name: "server_max_window_bits=10 is honoured", headers: ["permessage-deflate; server_max_window_bits=10"],
            response: "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
            parameters: .init(serverMaxWindowBits: 10)),
        NegotiationCase(
            name: "server_max_window_bits=8 is answered with 8",
            headers: ["permessage-deflate; server_max_window_bits=8"],
            response: "permessage-deflate; server_no_context_takeover; server_max_window_bits=8",
            parameters: .init(serverMaxWindowBits: 8)),
        NegotiationCase(
            name: "a quoted value is unquoted", headers: [#"permessage-deflate; server_max_window_bits="12""#],
            response: "permessage-deflate; server_no_context_takeover; server_max_window_bits=12",
            parameters: .init(serverMaxWindowBits: 12)),
        NegotiationCase(
            name: "client_no_context_takeover is echoed",
            headers: ["permessage-deflate; client_no_context_takeover; server_no_context_takeover"],
            response: "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            parameters: .init(clientNoContextTakeover: true)),
        NegotiationCase(
            name: "every parameter at once, names in any case",
            headers: [
                "PerMessage-Deflate;Client_Max_Window_Bits=9 ; server_max_window_bits=11;client_no_context_takeover"
            ],
            response: "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
                + "; server_max_window_bits=11; client_max_window_bits=9",
            parameters: .init(clientNoContextTakeover: true, serverMaxWindowBits: 11, clientMaxWindowBits: 9)),
        NegotiationCase(
            name: "an unknown parameter is rejected, then the second offer in the header chosen",
            headers: ["permessage-deflate; x_extra_bits=3, permessage-deflate; client_max_window_bits"],
            response: "permessage-deflate; server_no_context_takeover; client_max_window_bits=15"),
        NegotiationCase(
            name: "a rejected offer on one header line, an accepted one on the next",
            headers: ["permessage-deflate; server_max_window_bits", "permessage-deflate; client_no_context_takeover"],
            response: "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            parameters: .init(clientNoContextTakeover: true)),
        NegotiationCase(
            name: "a comma inside quotes does not start an offer",
            headers: [#"permessage-deflate; x="a, permessage-deflate", permessage-deflate; server_max_window_bits=9"#],
            response: "permessage-deflate; server_no_context_takeover; server_max_window_bits=9",
            parameters: .init(serverMaxWindowBits: 9)),
        NegotiationCase(
            name: "a duplicate parameter is rejected",
            headers: ["permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"], response: nil),
        NegotiationCase(
            name: "a duplicate flag is rejected",
            headers: ["permessage-deflate; client_no_context_takeover; client_no_context_takeover"], response: nil),
        NegotiationCase(
            name: "window bits 7 is rejected", headers: ["permessage-deflate; server_max_window_bits=7"],
            response: nil),
        NegotiationCase(
            name: "window bits 16 is rejected", headers: ["permessage-deflate; client_max_window_bits=16"],
            response: nil),
        NegotiationCase(
            name: "window bits with a leading zero is rejected",
            headers: ["permessage-deflate; server_max_window_bits=09"], response: nil),
        NegotiationCase(
            name: "server_max_window_bits without a value is rejected",
            headers: ["permessage-deflate; server_max_window_bits"], response: nil),
        NegotiationCase(
            name: "a flag with a value is rejected",
            headers: ["permessage-deflate; server_no_context_takeover=1"], response: nil),
        NegotiationCase(
            name: "a quoted value that is not a token is rejected",
            headers: [#"permessage-deflate; server_max_window_bits="1 0""#], response: nil),
        NegotiationCase(
            name: "a malformed offer is rejected", headers: ["permessage-deflate; ; server_max_window_bits=10"],
            response: nil),
        NegotiationCase(name: "no header", headers: [], response: nil),
        NegotiationCase(name: "an empty header", headers: ["", " , "], response: nil),
        NegotiationCase(
            name: "other extension names are ignored",
            headers: ["x-webkit-deflate-frame; no_context_takeover, deflate-frame", "permessage-deflatex"],
            response: nil),
        NegotiationCase(
            name: "another extension before the offer is skipped",
            headers: ["x-webkit-deflate-frame; max_window_bits=10, permessage-deflate"],
            response: "permessage-deflate; server_no_context_takeover"),
    ]

    @Test(arguments: Self.negotiationCases)
    func negotiatesTheFirstAcceptableOffer(_ testCase: NegotiationCase) {
        let agreement = PerMessageDeflate.negotiate(offers: testCase.headers)
        #expect(agreement?.responseHeaderValue == testCase.response)
        if testCase.response != nil {
            #expect(agreement?.parameters == testCase.parameters)
        }
    }

    // MARK: - The RFC 7692 examples

    @Test func compressesHelloAsInRFC7692() throws {
        let compressor = try PerMessageDeflateCompressor()
        let compressed = compressor.compress(ByteBuffer(string: "Hello"))
        #expect(Array(compressed.readableBytesView) == [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
        #expect(try Self.inflate(compressed) == "Hello")
    }

    /// RFC 7692 §7.2.3.1, §7.2.3.3 (a stored block), §7.2.3.4 (BFINAL set, then a byte), §7.2.3.5 (two blocks).
    @Test(
        arguments: [
            [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00],
            [0x00, 0x05, 0x00, 0xFA, 0xFF, 0x48, 0x65, 0x6C, 0x6C, 0x6F, 0x00],
            [0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00],
            [0xF2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xCA, 0xC9, 0xC9, 0x07, 0x00],
        ] as [[UInt8]])
    func inflatesTheRFC7692Examples(_ payload: [UInt8]) throws {
        #expect(try Self.inflate(ByteBuffer(bytes: payload)) == "Hello")
    }

    /// RFC 7692 §7.2.3.2: the second "Hello" is one back-reference into the first.
    @Test func keepsTheClientWindowBetweenMessages() throws {
        let decompressor = try PerMessageDeflateDecompressor()
        let first = try decompressor.decompress(ByteBuffer(bytes: Self.helloSyncFlushed), maxBytes: 100)
        let second = try decompressor.decompress(ByteBuffer(bytes: [0xF2, 0x00, 0x11, 0x00, 0x00]), maxBytes: 100)
        #expect(String(buffer: first) == "Hello")
        #expect(String(buffer: second) == "Hello")
    }

    @Test func dropsTheClientWindowWhenClientNoContextTakeoverWasAgreed() throws {
        let decompressor = try PerMessageDeflateDecompressor(
            parameters: .init(clientNoContextTakeover: true, clientMaxWindowBits: 15))
        let hello = ByteBuffer(bytes: Self.helloSyncFlushed)
        #expect(try decompressor.decompress(hello, maxBytes: 100) == ByteBuffer(string: "Hello"))
        #expect(throws: PerMessageDeflateError.corruptData) {
            try decompressor.decompress(ByteBuffer(bytes: [0xF2, 0x00, 0x11, 0x00, 0x00]), maxBytes: 100)
        }
        #expect(try decompressor.decompress(hello, maxBytes: 100) == ByteBuffer(string: "Hello"))
    }

    @Test func startsANewStreamAfterAMessageWithAFinalBlock() throws {
        let decompressor = try PerMessageDeflateDecompressor()
        let final: [UInt8] = [0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]
        for payload in [final, Self.helloSyncFlushed, final, final, Self.helloSyncFlushed] {
            #expect(String(buffer: try decompressor.decompress(ByteBuffer(bytes: payload), maxBytes: 100)) == "Hello")
        }
    }

    // MARK: - Round trips

    @Test func compressesAnEmptyMessageToOneZeroByte() throws {
        let compressed = try PerMessageDeflateCompressor().compress(ByteBuffer())
        #expect(Array(compressed.readableBytesView) == [0x00])
        #expect(try Self.inflate(compressed) == "")
        #expect(try Self.inflate(ByteBuffer()) == "")
    }

    /// Payloads by name: empty, small, 100 KiB random, 100 KiB repetitive.
    static let roundTripPayloads = ["empty", "small", "random 100 KiB", "repetitive 100 KiB"]

    static func payload(_ name: String) -> [UInt8] {
        switch name {
        case "empty": []
        case "small": Array(#"{"topic":"orders","data":{"id":42,"status":"shipped"}}"#.utf8)
        case "random 100 KiB": Self.randomBytes(count: 100 * 1024, seed: 7)
        case "repetitive 100 KiB":
            Array(String(repeating: #"{"event":"tick","value":1}\n"#, count: 3_800).utf8.prefix(102_400))
        default: preconditionFailure("unknown payload \(name)")
        }
    }

    @Test(arguments: Self.roundTripPayloads)
    func roundTripsMessagesThroughOneCompressorAndOneDecompressor(_ name: String) throws {
        let payload = Self.payload(name)
        let compressor = try PerMessageDeflateCompressor()
        let decompressor = try PerMessageDeflateDecompressor()
        for _ in 0..<3 {
            let compressed = compressor.compress(ByteBuffer(bytes: payload))
            let inflated = try decompressor.decompress(compressed, maxBytes: payload.count)
            #expect(Array(inflated.readableBytesView) == payload)
            if name == "repetitive 100 KiB" {
                #expect(compressed.readableBytes < payload.count / 50)
            }
        }
    }

    /// With `server_no_context_takeover`, a message's bytes do not depend on what the compressor did before, so
    /// one compressed frame can go to every connection.
    @Test func compressesEachMessageIndependently() throws {
        let shared = try PerMessageDeflateCompressor()
        _ = shared.compress(ByteBuffer(bytes: Self.payload("repetitive 100 KiB")))
        let again = shared.compress(ByteBuffer(string: "Hello"))
        #expect(Array(again.readableBytesView) == Self.helloSyncFlushed)
        #expect(try Self.inflate(again) == "Hello")
    }

    // MARK: - Limits and bad input

    @Test func stopsInflatingOnceMaxBytesIsPassed() throws {
        let bomb = try PerMessageDeflateCompressor().compress(ByteBuffer(repeating: 0x61, count: 10 * 1024 * 1024))
        #expect(bomb.readableBytes < 20 * 1024)
        let decompressor = try PerMessageDeflateDecompressor(noContextTakeover: true)
        var output = ByteBuffer()
        #expect(throws: PerMessageDeflateError.messageTooLarge) {
            try decompressor.decompress(bomb, maxBytes: 1_000_000, into: &output)
        }
        // It stopped just past the limit, in a buffer no larger than the power of two above it.
        #expect(output.readableBytes > 1_000_000)
        #expect(output.capacity <= 1 << 20)
        // The stream was reset: the next message inflates.
        let hello = ByteBuffer(bytes: Self.helloSyncFlushed)
        #expect(try decompressor.decompress(hello, maxBytes: 5) == ByteBuffer(string: "Hello"))
    }

    @Test func acceptsAMessageOfExactlyMaxBytes() throws {
        let payload = Self.payload("repetitive 100 KiB")
        let compressed = try PerMessageDeflateCompressor().compress(ByteBuffer(bytes: payload))
        let inflated = try PerMessageDeflateDecompressor().decompress(compressed, maxBytes: payload.count)
        #expect(inflated.readableBytes == payload.count)
        #expect(throws: PerMessageDeflateError.messageTooLarge) {
            try PerMessageDeflateDecompressor().decompress(compressed, maxBytes: payload.count - 1)
        }
    }

    @Test(
        arguments: [
            [0xFF, 0xFF, 0xFF, 0xFF],  // block type 3 does not exist
            [0xF2, 0x00, 0x11, 0x00, 0x00],  // a back-reference with no window
            [0x00, 0x05, 0x00, 0x00, 0x00, 0x48],  // a stored block whose length check fails
        ] as [[UInt8]])
    func rejectsCorruptData(_ payload: [UInt8]) throws {
        #expect(throws: PerMessageDeflateError.corruptData) {
            try PerMessageDeflateDecompressor().decompress(ByteBuffer(bytes: payload), maxBytes: 1000)
        }
    }

    // MARK: - Frames

    /// Payload length, then the header bytes expected before the payload.
    @Test(
        arguments: [
            (0, [0xC1, 0x00]),
            (125, [0xC1, 0x7D]),
            (126, [0xC1, 0x7E, 0x00, 0x7E]),
            (65_535, [0xC1, 0x7E, 0xFF, 0xFF]),
            (65_536, [0xC1, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]),
        ] as [(Int, [UInt8])])
    func framesCompressedTextWithFINRSV1AndTheShortestLength(_ length: Int, _ header: [UInt8]) {
        let payload = ByteBuffer(repeating: 0x5A, count: length)
        let frame = PerMessageDeflateCompressor.textFrame(compressedPayload: payload)
        #expect(frame.readableBytes == header.count + length)
        #expect(frame.getBytes(at: frame.readerIndex, length: header.count) == header)
        #expect(frame.getSlice(at: frame.readerIndex + header.count, length: length) == payload)
    }

    // MARK: - Against Python's zlib

    @Test func inflatesWhatPythonZlibCompressesWithItsWindowKept() throws {
        let messages = [
            Array("Hello".utf8), Array("Hello".utf8), Self.payload("repetitive 100 KiB"),
            Self.payload("random 100 KiB"),
        ]
        let compressed = try Self.python(Self.pythonCompress, messages)
        try #require(compressed.count == messages.count)
        #expect(compressed[0] == Self.helloSyncFlushed)
        #expect(compressed[1] == [0xF2, 0x00, 0x11, 0x00, 0x00])
        let decompressor = try PerMessageDeflateDecompressor()
        for (message, payload) in zip(messages, compressed) {
            let inflated = try decompressor.decompress(ByteBuffer(bytes: payload), maxBytes: 200 * 1024)
            #expect(Array(inflated.readableBytesView) == message)
        }
    }

    @Test func pythonZlibInflatesWhatTheCompressorProduces() throws {
        let compressor = try PerMessageDeflateCompressor()
        let messages = Self.roundTripPayloads.map(Self.payload)
        let compressed = messages.map { Array(compressor.compress(ByteBuffer(bytes: $0)).readableBytesView) }
        #expect(try Self.python(Self.pythonDecompress(windowBits: 15), compressed) == messages)
    }

    /// zlib cannot compress raw DEFLATE with an 8-bit window; the compressor uses 9 and stays within 256 bytes.
    @Test func honoursAServerWindowOfEightBits() throws {
        let compressor = try PerMessageDeflateCompressor(windowBits: 8)
        let words = (0..<40).map { Self.randomBytes(count: 12, seed: UInt64($0)) }
        var random = SplitMix64(seed: 11)
        let text = (0..<4000).flatMap { _ in words[Int(random.next() % 40)] }
        let compressed = Array(compressor.compress(ByteBuffer(bytes: text)).readableBytesView)
        #expect(try Self.python(Self.pythonDecompress(windowBits: 8), [compressed]) == [text])
    }

    // MARK: - Helpers

    /// "Hello", sync-flushed, tail removed (RFC 7692 §7.2.3.1).
    static let helloSyncFlushed: [UInt8] = [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]

    static func inflate(_ payload: ByteBuffer) throws -> String {
        String(buffer: try PerMessageDeflateDecompressor().decompress(payload, maxBytes: 1 << 20))
    }

    /// A deterministic generator, so a failure can be replayed.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { self.state = seed }
        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func randomBytes(count: Int, seed: UInt64) -> [UInt8] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// One compressobj for all messages, so its window is kept, as with context takeover.
    static let pythonCompress = """
        import sys, zlib
        c = zlib.compressobj(wbits=-15)
        for line in sys.stdin.read().splitlines():
            out = c.compress(bytes.fromhex(line)) + c.flush(zlib.Z_SYNC_FLUSH)
            assert out.endswith(b"\\x00\\x00\\xff\\xff")
            print(out[:-4].hex())
        """

    static func pythonDecompress(windowBits: Int) -> String {
        """
        import sys, zlib
        for line in sys.stdin.read().splitlines():
            d = zlib.decompressobj(wbits=-\(windowBits))
            print(d.decompress(bytes.fromhex(line) + b"\\x00\\x00\\xff\\xff").hex())
        """
    }

    /// Runs `python3 -c script`, one message a line in hex on stdin, one a line in hex on stdout.
    static func python(_ script: String, _ messages: [[UInt8]]) throws -> [[UInt8]] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let lines = messages.map(Self.hex).joined(separator: "\n") + "\n"
        try input.fileHandleForWriting.write(contentsOf: Data(lines.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .dropLast().map(Self.bytes)
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    static func bytes(_ hex: Substring) -> [UInt8] {
        let digits = Array(hex.utf8).map {
            $0 <= UInt8(ascii: "9") ? $0 - UInt8(ascii: "0") : $0 - UInt8(ascii: "a") + 10
        }
        return stride(from: 0, to: digits.count, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
    }
}
