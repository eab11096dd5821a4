import EventBroker
import NIOCore
import Testing

@Suite struct SSEFrameTests {
    private let allocator = ByteBufferAllocator()

    // MARK: Exact bytes

    @Test func encodesEventAsOneHTTPChunk() throws {
        let frame = SSEFrame.encode(
            id: EventID(rawValue: 7), event: "update", data: "{\"v\":1}", allocator: self.allocator)
        #expect(String(buffer: frame) == "23\r\nid: 7\nevent: update\ndata: {\"v\":1}\n\n\r\n")
        let payload = try Self.unchunk(frame)
        #expect(payload.count == 0x23)
    }

    @Test func encodesEventWithoutType() {
        let frame = SSEFrame.encode(id: EventID(rawValue: 7), event: nil, data: "hello", allocator: self.allocator)
        #expect(String(buffer: frame) == "13\r\nid: 7\ndata: hello\n\n\r\n")
    }

    @Test func encodesRetryAfterID() {
        let frame = SSEFrame.encode(
            id: EventID(rawValue: 5), event: nil, data: "x", retry: 2500, allocator: self.allocator)
        #expect(String(buffer: frame) == Self.chunked("id: 5\nretry: 2500\ndata: x\n\n"))
    }

    /// The id and size lines are written backwards into room kept in front of the prepared frame: every width of
    /// either must land exactly in front of the body.
    @Test(arguments: [0, 9, 10, 99_999, 1_763_780_248_000_001, UInt64.max])
    func writesEveryIDWidthInFrontOfTheBody(id: UInt64) throws {
        for dataBytes in [1, 2, 3, 200, 4000] {
            let data = String(repeating: "d", count: dataBytes)
            let frame = SSEFrame.encode(
                id: EventID(rawValue: id), event: "e", data: data, retry: 0, allocator: self.allocator)
            let payload = "id: \(id)\nretry: 0\nevent: e\ndata: \(data)\n\n"
            #expect(String(buffer: frame) == Self.chunked(payload))
            #expect(frame.readerIndex == 0)
        }
    }

    @Test func preparedFrameFinishedWithAnIDMatchesTheDirectEncoding() {
        let prepared = SSEFrame.prepare(event: "t", data: "a\nb", retry: 10, allocator: self.allocator)
        let frame = prepared.finish(id: EventID(rawValue: 42))
        #expect(
            frame
                == SSEFrame.encode(
                    id: EventID(rawValue: 42), event: "t", data: "a\nb", retry: 10, allocator: self.allocator))
    }

    @Test(arguments: [1, 15, 16, 255, 256, 4095, 4096, 65536])
    func chunkFramesEveryHexWidth(bytes: Int) throws {
        let text = String(repeating: "p", count: bytes)
        let chunk = SSEFrame.chunk(ByteBuffer(string: text), allocator: self.allocator)
        #expect(String(buffer: chunk) == "\(String(bytes, radix: 16))\r\n\(text)\r\n")
    }

    @Test func writesTheFullSixteenDigitID() {
        let frame = SSEFrame.encode(
            id: EventID(rawValue: 1_763_780_248_000_001), event: nil, data: "x", allocator: self.allocator)
        #expect(String(buffer: frame) == "1e\r\nid: 1763780248000001\ndata: x\n\n\r\n")
    }

    @Test func writesHexLengthInLowercaseForLargePayloads() throws {
        // 6 ("id: 1\n") + 6 ("data: ") + 413 + 2 ("\n\n") = 427 = 0x1ab
        let data = String(repeating: "z", count: 413)
        let frame = SSEFrame.encode(id: EventID(rawValue: 1), event: nil, data: data, allocator: self.allocator)
        #expect(String(buffer: frame).hasPrefix("1ab\r\nid: 1\ndata: zzz"))
        #expect(try Self.unchunk(frame).count == 427)
    }

    @Test func countsMultiByteDataInBytes() throws {
        // h é(2) l l o 😀(4): 10 bytes, 6 characters. 6 + 6 + 10 + 2 = 24 = 0x18.
        let frame = SSEFrame.encode(id: EventID(rawValue: 1), event: nil, data: "héllo😀", allocator: self.allocator)
        #expect(String(buffer: frame) == "18\r\nid: 1\ndata: héllo😀\n\n\r\n")
        #expect(try Self.unchunk(frame).count == 24)
        #expect(frame.readableBytes == 2 + 2 + 24 + 2)
    }

    // MARK: Multi-line data

    @Test func splitsDataOnLineFeed() {
        let frame = SSEFrame.encode(id: EventID(rawValue: 1), event: nil, data: "a\nb", allocator: self.allocator)
        #expect(String(buffer: frame) == Self.chunked("id: 1\ndata: a\ndata: b\n\n"))
    }

    @Test func splitsDataOnCarriageReturnLineFeedAsOneLineEnd() {
        let frame = SSEFrame.encode(id: EventID(rawValue: 1), event: nil, data: "a\r\nb", allocator: self.allocator)
        #expect(String(buffer: frame) == Self.chunked("id: 1\ndata: a\ndata: b\n\n"))
    }

    @Test func splitsDataOnLoneCarriageReturn() {
        let frame = SSEFrame.encode(id: EventID(rawValue: 1), event: nil, data: "a\rb", allocator: self.allocator)
        #expect(String(buffer: frame) == Self.chunked("id: 1\ndata: a\ndata: b\n\n"))
    }

    @Test func keepsEmptyLinesInsideData() {
        let frame = SSEFrame.encode(id: EventID(rawValue: 1), event: nil, data: "a\n\nb", allocator: self.allocator)
        #expect(String(buffer: frame) == Self.chunked("id: 1\ndata: a\ndata: \ndata: b\n\n"))
    }

    @Test func trailingNewlineGivesAFinalEmptyDataLine() {
        let frame = SSEFrame.encode(id: EventID(rawValue: 1), event: nil, data: "a\n", allocator: self.allocator)
        #expect(String(buffer: frame) == Self.chunked("id: 1\ndata: a\ndata: \n\n"))
    }

    @Test func crBeforeCRLFEndsTwoLines() {
        let frame = SSEFrame.encode(id: EventID(rawValue: 1), event: nil, data: "a\r\r\nb", allocator: self.allocator)
        #expect(String(buffer: frame) == Self.chunked("id: 1\ndata: a\ndata: \ndata: b\n\n"))
    }

    static let multiLineCases: [(data: String, expected: String)] = [
        ("plain", "plain"),
        ("a\nb", "a\nb"),
        ("a\r\nb", "a\nb"),
        ("a\rb", "a\nb"),
        ("a\n\nb", "a\n\nb"),
        ("a\n", "a\n"),
        ("a\r", "a\n"),
        ("a\r\n", "a\n"),
        ("\n", "\n"),
        ("\r\n\r\n", "\n\n"),
        ("\na", "\na"),
        ("a\r\r\nb\n\rc", "a\n\nb\n\nc"),
        (" leading space", " leading space"),
        ("data: looks like a field", "data: looks like a field"),
        (":not a comment\n:still not", ":not a comment\n:still not"),
        ("\u{FEFF}starts with a BOM", "\u{FEFF}starts with a BOM"),
        ("tab\there", "tab\there"),
        ("ünïcödé 😀\r\n✓", "ünïcödé 😀\n✓"),
        ("{\"a\":[1,2]}", "{\"a\":[1,2]}"),
    ]

    @Test(arguments: Self.multiLineCases)
    func parserReconstructsDataWithLineEndsNormalisedToLF(data: String, expected: String) throws {
        let frame = SSEFrame.encode(id: EventID(rawValue: 42), event: "e", data: data, allocator: self.allocator)
        let payload = try Self.unchunk(frame)
        #expect(!payload.contains(UInt8(ascii: "\r")), "no CR anywhere in the payload")
        #expect(payload.first != 0xEF, "no byte-order mark")
        let stream = Self.parseEventStream(payload)
        #expect(stream.events == [ParsedEvent(id: "42", event: "e", data: expected)])
    }

    @Test(arguments: ["x", "a\nb", "a\rb", "a\r\nb", "\r", "\r\n"])
    func everyEventFrameCarriesItsID(data: String) throws {
        let frame = SSEFrame.encode(
            id: EventID(rawValue: 1_763_780_248_000_001), event: nil, data: data, allocator: self.allocator)
        let payload = String(decoding: try Self.unchunk(frame), as: UTF8.self)
        #expect(payload.hasPrefix("id: 1763780248000001\n"))
        #expect(payload.hasSuffix("\n\n"))
        let stream = Self.parseEventStream(Array(payload.utf8))
        #expect(stream.events.map(\.id) == ["1763780248000001"])
        #expect(stream.lastEventID == "1763780248000001")
    }

    @Test func noFrameBeginsWithAByteOrderMarkOrContainsCR() throws {
        let frames = [
            SSEFrame.encode(id: .zero, event: nil, data: "\u{FEFF}x\r", allocator: self.allocator),
            SSEFrame.encode(id: .zero, event: "t", data: "\r\r", retry: 1, allocator: self.allocator),
            SSEFrame.control(event: "gap", data: "a\rb", allocator: self.allocator),
            SSEFrame.control(event: "connected", data: "\r\n", retry: 3000, allocator: self.allocator),
            SSEFrame.retryHint(milliseconds: 1, allocator: self.allocator),
            SSEFrame.heartbeat,
        ]
        for frame in frames {
            let payload = try Self.unchunk(frame)
            #expect(payload.first != 0xEF)
            #expect(!payload.contains(UInt8(ascii: "\r")))
        }
    }

    // MARK: Control frames

    @Test func controlFrameHasNoID() throws {
        let frame = SSEFrame.control(event: "gap", data: "{\"lastEventId\":\"5\"}", allocator: self.allocator)
        #expect(String(buffer: frame) == Self.chunked("event: gap\ndata: {\"lastEventId\":\"5\"}\n\n"))
        let stream = Self.parseEventStream(try Self.unchunk(frame))
        #expect(stream.events == [ParsedEvent(id: nil, event: "gap", data: "{\"lastEventId\":\"5\"}")])
        #expect(stream.lastEventID == nil)
    }

    @Test func controlFrameMayCarryRetryFirst() throws {
        let frame = SSEFrame.control(event: "connected", data: "{}", retry: 3000, allocator: self.allocator)
        #expect(String(buffer: frame) == Self.chunked("retry: 3000\nevent: connected\ndata: {}\n\n"))
        let stream = Self.parseEventStream(try Self.unchunk(frame))
        #expect(stream.retry == 3000)
        #expect(stream.events == [ParsedEvent(id: nil, event: "connected", data: "{}")])
    }

    @Test func controlFrameSplitsMultiLineData() {
        let frame = SSEFrame.control(event: "gap", data: "a\r\nb", allocator: self.allocator)
        #expect(String(buffer: frame) == Self.chunked("event: gap\ndata: a\ndata: b\n\n"))
    }

    @Test func retryHintIsALoneRetryField() throws {
        let frame = SSEFrame.retryHint(milliseconds: 2500, allocator: self.allocator)
        #expect(String(buffer: frame) == "d\r\nretry: 2500\n\n\r\n")
        let stream = Self.parseEventStream(try Self.unchunk(frame))
        #expect(stream.retry == 2500)
        #expect(stream.events.isEmpty)
    }

    @Test func heartbeatIsAChunkedComment() throws {
        #expect(String(buffer: SSEFrame.heartbeat) == "6\r\n: hb\n\n\r\n")
        let stream = Self.parseEventStream(try Self.unchunk(SSEFrame.heartbeat))
        #expect(stream.events.isEmpty)
        #expect(stream.comments == [" hb"])
    }

    @Test func lastChunkEndsTheChunkedBody() {
        #expect(String(buffer: SSEFrame.lastChunk) == "0\r\n\r\n")
    }

    @Test func chunkWrapsAnyPayload() throws {
        let frame = SSEFrame.chunk(ByteBuffer(string: "0123456789abcdef!"), allocator: self.allocator)
        #expect(String(buffer: frame) == "11\r\n0123456789abcdef!\r\n")
        #expect(try Self.unchunk(frame) == Array("0123456789abcdef!".utf8))
    }

    @Test func encodingDoesNotConsumeOrShareWriterState() {
        let a = SSEFrame.encode(id: EventID(rawValue: 1), event: nil, data: "x", allocator: self.allocator)
        let b = SSEFrame.encode(id: EventID(rawValue: 1), event: nil, data: "x", allocator: self.allocator)
        #expect(a == b)
        #expect(a.readerIndex == 0)
    }
}

// MARK: Helpers

extension SSEFrameTests {
    struct ParsedEvent: Equatable, CustomStringConvertible {
        var id: String?
        var event: String
        var data: String
        var description: String { "id=\(self.id ?? "nil") event=\(self.event) data=\(self.data.debugDescription)" }
    }

    struct ParsedStream {
        var events: [ParsedEvent] = []
        var retry: Int?
        var comments: [String] = []
        var lastEventID: String?
    }

    /// `"<hex len>\r\n" + payload + "\r\n"`.
    static func chunked(_ payload: String) -> String {
        String(payload.utf8.count, radix: 16) + "\r\n" + payload + "\r\n"
    }

    /// Checks HTTP/1.1 chunk framing (lowercase hex length equal to the payload's byte count, CRLFs, nothing
    /// after) and returns the payload.
    static func unchunk(_ frame: ByteBuffer) throws -> [UInt8] {
        let bytes = Array(frame.readableBytesView)
        let headerEnd = try #require(bytes.firstIndex(of: UInt8(ascii: "\r")))
        let hex = String(decoding: bytes[..<headerEnd], as: UTF8.self)
        #expect(!hex.isEmpty && hex.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        let length = try #require(Int(hex, radix: 16))
        try #require(bytes.count == headerEnd + 2 + length + 2, "hex length \(hex) must equal the payload bytes")
        #expect(bytes[headerEnd + 1] == UInt8(ascii: "\n"))
        #expect(Array(bytes.suffix(2)) == [UInt8(ascii: "\r"), UInt8(ascii: "\n")])
        return Array(bytes[(headerEnd + 2)..<(headerEnd + 2 + length)])
    }

    /// A WHATWG `text/event-stream` parser (HTML § 9.2.6), enough to check what a browser would see.
    static func parseEventStream(_ payload: [UInt8]) -> ParsedStream {
        var scalars = Array(String(decoding: payload, as: UTF8.self).unicodeScalars)
        if scalars.first == "\u{FEFF}" { scalars.removeFirst() }
        var lines: [String] = []
        var line = String.UnicodeScalarView()
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "\r" || scalar == "\n" {
                lines.append(String(line))
                line = String.UnicodeScalarView()
                if scalar == "\r", index + 1 < scalars.count, scalars[index + 1] == "\n" { index += 1 }
            } else {
                line.append(scalar)
            }
            index += 1
        }
        var stream = ParsedStream()
        var data = String.UnicodeScalarView()
        var eventType = ""
        for line in lines {
            if line.isEmpty {
                defer {
                    data = String.UnicodeScalarView()
                    eventType = ""
                }
                guard !data.isEmpty else { continue }
                if data.last == "\n" { data.removeLast() }
                stream.events.append(
                    ParsedEvent(
                        id: stream.lastEventID, event: eventType.isEmpty ? "message" : eventType, data: String(data)))
                continue
            }
            if line.unicodeScalars.first == ":" {
                stream.comments.append(String(line.unicodeScalars.dropFirst()))
                continue
            }
            let field: String
            var value: Substring.UnicodeScalarView
            if let colon = line.unicodeScalars.firstIndex(of: ":") {
                field = String(line.unicodeScalars[..<colon])
                value = line.unicodeScalars[line.unicodeScalars.index(after: colon)...]
                if value.first == " " { value.removeFirst() }
            } else {
                field = line
                value = Substring.UnicodeScalarView()
            }
            let text = String(value)
            switch field {
            case "event": eventType = text
            case "data":
                data.append(contentsOf: value)
                data.append("\n")
            case "id": if !text.unicodeScalars.contains("\u{0}") { stream.lastEventID = text }
            case "retry":
                if !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) { stream.retry = Int(text) }
            default: break
            }
        }
        return stream
    }

    // MARK: Data kept once

    /// An event's data reads back exactly, whether its SSE chunk holds it verbatim (one line: history keeps it once)
    /// or not (line breaks: kept beside the chunk).
    @Test(arguments: [
        ("hello", true), ("{\"v\":1}", true), ("h\u{E9}llo \u{1F600}", true), ("", true), ("a\nb", false),
        ("a\r\nb", false), ("a\rb", false), ("trailing\n", false), ("\n", false),
    ])
    func anEventsDataReadsBackExactly(_ data: String, verbatim: Bool) {
        for (eventType, retry) in [(String?.none, Int?.none), ("update", 2500)] {
            let prepared = SSEFrame.prepare(
                event: eventType, data: data, retry: retry, allocator: ByteBufferAllocator())
            #expect(prepared.holdsDataVerbatim == verbatim, "\(data.debugDescription)")
            let event = BrokerEvent(
                id: EventID(rawValue: 1_763_780_248_000_001), topics: [], eventType: eventType, data: data,
                dataIsJSON: false, timeMilliseconds: 0, retryMilliseconds: retry, isPrivate: false,
                frame: prepared, webSocketFrame: nil)
            #expect(event.data == data)
            #expect(event.data.utf8.elementsEqual(data.utf8))
            if verbatim {
                #expect(SSEFrame.data(in: event.sseChunk, bytes: data.utf8.count) == data)
            }
        }
    }
}
