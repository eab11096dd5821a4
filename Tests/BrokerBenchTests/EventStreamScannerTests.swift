import Testing

@testable import BrokerBench

@Suite struct EventStreamScannerTests {
    /// A body with every case at once: an extension, lines spanning chunks, a CRLF line, a long line, the end.
    private static let mixedBody =
        "13;name=value\r\nid: 1\ndata: 0 1 50\n\r\n"
        + "2\r\n\nd\r\n"
        + "3\r\nata\r\n"
        + "A\r\n: 1 7 60\r\n\r\n"
        + "5D\r\ndata: 2 3 4 \(String(repeating: "x", count: 80))\n\r\n"
        + "1\r\n\n\r\n"
        + "0\r\n\r\n"
        + "5\r\nafter\r\n"
    private static let mixedLines = [
        "id: 1", "data: 0 1 50", "", "data: 1 7 60\r",
        "data: 2 3 4 \(String(repeating: "x", count: 52))", "",
    ]

    @Test func decodesChunksIntoLines() throws {
        let result = try Self.scan(["6\r\nid: 7\n\r\n12\r\ndata: 3 41 123 xx\n\r\n1\r\n\n\r\n"])
        #expect(result.lines == ["id: 7", "data: 3 41 123 xx", ""])
        #expect(!result.isFinished)
    }

    @Test func handsOutTheSameLinesWhereverAReadEnds() throws {
        let body = Array(Self.mixedBody.utf8)
        #expect(try Self.scan([body[...]]) == (Self.mixedLines, true))
        for split in 0...body.count {
            let result = try Self.scan([body[..<split], body[split...]])
            #expect(result == (Self.mixedLines, true), "split at \(split)")
        }
        for first in 0...body.count {
            for second in first...body.count {
                let result = try Self.scan([body[..<first], body[first..<second], body[second...]])
                #expect(result == (Self.mixedLines, true), "split at \(first) and \(second)")
            }
        }
    }

    @Test func handsOutTheSameLinesByteByByte() throws {
        let body = Array(Self.mixedBody.utf8)
        let result = try Self.scan(body.indices.map { body[$0...$0] })
        #expect(result == (Self.mixedLines, true))
    }

    @Test func ignoresChunkExtensions() throws {
        let result = try Self.scan(["4;a=1;b=\"x;y\"\r\nab\nc\r\n3;q \r\nd\ne\r\n0;last\r\n\r\n"])
        #expect(result == (["ab", "cd"], true))
    }

    @Test func joinsALineSpanningSeveralChunks() throws {
        let result = try Self.scan(["3\r\ndat\r\n1\r\na\r\nA\r\n: 1 2 3 xx\r\n2\r\nx\n\r\n"])
        #expect(result == (["data: 1 2 3 xxx"], false))
    }

    @Test func keepsTheCarriageReturnOfCRLFLineEnds() throws {
        let result = try Self.scan(["14\r\nid: 1\r\ndata: 4 5 6\r\n\r\n", "2\r\n\r\n\r\n"])
        #expect(result == (["id: 1\r", "data: 4 5 6\r", "\r"], false))
    }

    @Test func truncatesALongLineToItsFirst64Bytes() throws {
        let head = "data: 1 2 3 " + String(repeating: "y", count: 52)
        let line = head + String(repeating: "z", count: 936)
        #expect(head.utf8.count == 64)
        let chunk = "\(String(line.utf8.count + 1, radix: 16))\r\n\(line)\n\r\n"
        #expect(try Self.scan([chunk]) == ([head], false))
        #expect(try Self.scan([chunk.prefix(40), chunk.dropFirst(40)]) == ([head], false))
        #expect(try Self.scan([chunk.prefix(200), chunk.dropFirst(200)]) == ([head], false))
        #expect(try Self.scan(["40\r\n\(head)\r\n1\r\n\n\r\n"]) == ([head], false))
        #expect(try Self.scan(["42\r\n\(head)z\n\r\n"]) == ([head], false))
    }

    @Test func splitsAPlainBodyWithoutChunkFraming() throws {
        let body = Array("id: 1\ndata: 0 1 50\n\n0\r\n\r\nid: 2\nopen".utf8)
        let lines = ["id: 1", "data: 0 1 50", "", "0\r", "\r", "id: 2"]
        for split in 0...body.count {
            #expect(try Self.scan([body[..<split], body[split...]], chunked: false) == (lines, false))
        }
    }

    @Test func terminatingChunkFinishesTheStream() throws {
        var scanner = EventStreamScanner(chunked: true)
        var lines: [String] = []
        let parts = ["3\r\nab\n\r\n0", "\r", "\n", "\r\n5\r\ncd\nef\r\n"]
        var finished: [Bool] = []
        for part in parts {
            try Array(part.utf8).withUnsafeBytes { bytes in
                try scanner.feed(bytes) { lines.append(String(decoding: $0, as: UTF8.self)) }
            }
            finished.append(scanner.isFinished)
        }
        #expect(finished == [false, false, true, true])
        #expect(lines == ["ab"])
    }

    @Test func emptySizeLineEndsTheStreamLikeAZeroChunk() throws {
        #expect(try Self.scan(["3\r\nab\n\r\n\r\n3\r\ncd\n\r\n"]) == (["ab"], true))
    }

    @Test(arguments: ["zz\r\n", "1 \r\n", "-1\r\n", "0x10\r\n", "10000000000000000\r\n"])
    func badChunkSizeThrows(size: String) {
        #expect(throws: EventStreamScanner.Error.badChunkSize) {
            _ = try Self.scan(["3\r\nab\n\r\n", size])
        }
    }

    @Test func linesBeforeABadChunkSizeAreHandedOut() {
        var scanner = EventStreamScanner(chunked: true)
        var lines: [String] = []
        #expect(throws: EventStreamScanner.Error.badChunkSize) {
            try Array("3\r\nab\n\r\ng\r\n".utf8).withUnsafeBytes { bytes in
                try scanner.feed(bytes) { lines.append(String(decoding: $0, as: UTF8.self)) }
            }
        }
        #expect(lines == ["ab"])
    }

    @Test(
        arguments: [
            ("data: 3 41 1234567890", 3, 41, 1_234_567_890),
            ("data: 0 0 0", 0, 0, 0),
            ("data: 3 41 1234567890 xxxx", 3, 41, 1_234_567_890),
            ("data: 12 345 6789\r", 12, 345, 6789),
            ("data: 1 2 3x", 1, 2, 3),
            ("data: 999999999999999999 1 987654321987654321", 999_999_999_999_999_999, 1, 987_654_321_987_654_321),
        ] as [(String, Int, Int, UInt64)])
    func parsesDataLine(line: String, publisher: Int, sequence: Int, sent: UInt64) throws {
        let parsed = try #require(Self.parse(line))
        #expect(parsed.publisher == publisher)
        #expect(parsed.sequence == sequence)
        #expect(parsed.sentNanoseconds == sent)
    }

    @Test(arguments: [
        "", "data: ", "data: 1 2", "data: 1 2 ", "data:1 2 3", "data:  1 2 3", "data: 1  2 3", "data: 1,2,3",
        "data: a 2 3", "data: 1 2 x", "id: 1 2 3", "DATA: 1 2 3", "event: data: 1 2 3",
        "data: 1 2 1234567890123456789",
    ])
    func rejectsLineThatIsNotAnEventDataLine(line: String) {
        #expect(Self.parse(line) == nil)
    }

    /// Feeds `parts` to a new scanner in order; returns the lines it handed out, as text.
    private static func scan(
        _ parts: [some Collection<UInt8>], chunked: Bool = true
    ) throws -> (lines: [String], isFinished: Bool) {
        var scanner = EventStreamScanner(chunked: chunked)
        var lines: [String] = []
        for part in parts {
            try Array(part).withUnsafeBytes { bytes in
                try scanner.feed(bytes) { lines.append(String(decoding: $0, as: UTF8.self)) }
            }
        }
        return (lines, scanner.isFinished)
    }

    private static func scan(
        _ parts: [some StringProtocol], chunked: Bool = true
    ) throws -> (lines: [String], isFinished: Bool) {
        try Self.scan(parts.map { Array($0.utf8) }, chunked: chunked)
    }

    private static func parse(_ line: String) -> EventStreamScanner.DataLine? {
        Array(line.utf8).withUnsafeBytes { EventStreamScanner.parseDataLine($0) }
    }
}
