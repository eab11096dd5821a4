import Testing

@testable import BrokerBench

@Suite struct HTTPResponseScannerTests {
    /// Five answers in a row, one of each framing: what a keep-alive publisher can be sent.
    private static let conversation =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"id\":\"17\"}\n"
        + "HTTP/1.1 100 Continue\r\n\r\n"
        + "HTTP/1.1 202 Accepted\r\ntransfer-encoding: gzip ,  Chunked\r\n\r\n"
        + "5;ext=1\r\nhello\r\n0\r\nX-Trailer: yes\r\n\r\n"
        + "HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n"
        + "HTTP/1.0 429 Too Many Requests\nCONTENT-LENGTH:  3 \n\n{}\n"
        + "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    private static let statuses = [200, 202, 204, 429, 201]

    @Test func findsEachAnswerAndItsStatus() throws {
        #expect(try Self.scan([Array(Self.conversation.utf8)[...]]) == Self.statuses)
    }

    @Test func findsTheSameAnswersWhereverAReadEnds() throws {
        let bytes = Array(Self.conversation.utf8)
        for split in 0...bytes.count {
            #expect(try Self.scan([bytes[..<split], bytes[split...]]) == Self.statuses, "split at \(split)")
        }
        #expect(try Self.scan(bytes.indices.map { bytes[$0...$0] }) == Self.statuses)
    }

    @Test func reportsNothingBeforeTheBodyEnds() throws {
        #expect(try Self.scan(["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcd"]) == [])
        #expect(try Self.scan(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"]) == [])
        #expect(try Self.scan(["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"]) == [])
    }

    @Test(arguments: [
        ("HTTP/2 200 OK\r\n\r\n", HTTPResponseScanner.Error.malformedStatusLine),
        ("HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine),
        ("HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine),
        ("\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine),
        ("HTTP/1.1 200 OK\r\n\r\n", .unframedBody),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", .unframedBody),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", .badContentLength),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", .badContentLength),
        ("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", .badContentLength),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", .badChunk),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", .badChunk),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc", .badChunk),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\rx", .badChunk),
    ])
    func refusesWhatItCannotFrame(answer: String, error: HTTPResponseScanner.Error) {
        #expect(throws: error) { try Self.scan([Array(answer.utf8)[...]]) }
    }

    @Test func refusesAnEndlessHead() {
        let line = Array("X-Filler: \(String(repeating: "y", count: 1000))\r\n".utf8)
        var scanner = HTTPResponseScanner()
        #expect(throws: HTTPResponseScanner.Error.headTooLarge) {
            try Array("HTTP/1.1 200 OK\r\n".utf8).withUnsafeBytes { try scanner.feed($0) { _ in } }
            for _ in 0..<20 { try line.withUnsafeBytes { try scanner.feed($0) { _ in } } }
        }
    }

    private static func scan(_ reads: [String]) throws -> [Int] {
        try Self.scan(reads.map { Array($0.utf8)[...] })
    }

    private static func scan(_ reads: [ArraySlice<UInt8>]) throws -> [Int] {
        var scanner = HTTPResponseScanner()
        var statuses: [Int] = []
        for read in reads {
            try read.withUnsafeBytes { bytes in try scanner.feed(bytes) { statuses.append($0) } }
        }
        return statuses
    }
}
