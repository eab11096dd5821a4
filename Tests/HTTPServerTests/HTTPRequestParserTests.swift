import NIOCore
import NIOHTTP1
import Testing

@testable import HTTPServer

/// The request parser on its own: bytes in, parts out, fed whole and one byte at a time.
@Suite struct HTTPRequestParserTests {
    static let limits = HTTPRequestParser.Limits(maxRequestLineBytes: 200, maxHeaderBytes: 300, maxHeaderCount: 8)

    /// What the parser made of `text`: heads, body bytes (joined per request) and ends, in order.
    enum Part: Equatable {
        case head(method: HTTPMethod, uri: String, version: HTTPVersion, headers: [String])
        case body(String)
        case end
    }

    /// Parses `text` fed in pieces of `step` bytes (0: all at once); the parts, then the error if one stopped it.
    static func parse(
        _ text: String, step: Int = 0, limits: HTTPRequestParser.Limits = Self.limits
    ) -> (parts: [Part], error: HTTPRequestParser.ParseError?) {
        var parser = HTTPRequestParser(limits: limits)
        var buffer = ByteBuffer()
        var parts: [Part] = []
        let bytes = Array(text.utf8)
        var offset = 0
        func add(_ part: HTTPServerRequestPart) {
            switch part {
            case .head(let head):
                parts.append(
                    .head(
                        method: head.method, uri: head.uri, version: head.version,
                        headers: head.headers.map { "\($0.name)=\($0.value)" }))
            case .body(let chunk):
                if case .body(let earlier) = parts.last {
                    parts[parts.count - 1] = .body(earlier + String(buffer: chunk))
                } else {
                    parts.append(.body(String(buffer: chunk)))
                }
            case .end:
                parts.append(.end)
            }
        }
        repeat {
            let count = step == 0 ? bytes.count : min(step, bytes.count - offset)
            buffer.writeBytes(bytes[offset..<(offset + count)])
            offset += count
            do {
                while true {
                    if let end = parser.pendingEnd() {
                        add(end)
                    } else if let part = try parser.next(&buffer) {
                        add(part)
                    } else {
                        break
                    }
                }
            } catch {
                return (parts, error)
            }
        } while offset < bytes.count
        return (parts, nil)
    }

    @Test(arguments: [0, 1, 7])
    func readsARequestWithABodyThenOneWithout(step: Int) {
        let text =
            "POST /api/events/publish?topic=a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            + "GET /api/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        let (parts, error) = Self.parse(text, step: step)
        #expect(error == nil)
        #expect(
            parts == [
                .head(
                    method: .POST, uri: "/api/events/publish?topic=a", version: .http1_1,
                    headers: ["Host=x", "Content-Length=5"]),
                .body("hello"), .end,
                .head(method: .GET, uri: "/api/health", version: .http1_0, headers: ["Connection=keep-alive"]), .end,
            ])
    }

    @Test(arguments: [0, 1, 5])
    func readsAChunkedBodyWithExtensionsAndTrailers(step: Int) {
        let text =
            "POST /p HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n1A\r\n" + String(repeating: "b", count: 26) + "\r\n0\r\nX-Trailer: t\r\n\r\n"
            + "GET / HTTP/1.1\r\n\r\n"
        let (parts, error) = Self.parse(text, step: step)
        #expect(error == nil)
        #expect(parts.count == 5)
        #expect(parts[1] == .body("hello" + String(repeating: "b", count: 26)))
        #expect(parts[2] == .end)
        #expect(parts[3] == .head(method: .GET, uri: "/", version: .http1_1, headers: []))
    }

    @Test func trimsHeaderValuesAndKeepsOtherMethods() {
        let (parts, error) = Self.parse("\r\nPATCH /x HTTP/1.1\r\nA:\t one two \t\r\nB:\r\n\r\n")
        #expect(error == nil)
        #expect(parts == [.head(method: .PATCH, uri: "/x", version: .http1_1, headers: ["A=one two", "B="]), .end])
    }

    /// What the handler reads from the parser once a head is out, instead of looking through the headers again.
    static let announcements: [(head: String, contentLength: Int?, waitsForContinue: Bool)] = [
        ("POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", 5, true),
        ("POST / HTTP/1.1\r\nexpect: 100-CONTINUE\r\nContent-Length: 5\r\n\r\n", 5, true),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n", nil, true),
        // No body to hold back, HTTP/1.0, another expectation first, or none: no go-ahead is awaited.
        ("POST / HTTP/1.1\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n", 0, false),
        ("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", nil, false),
        ("POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", 5, false),
        ("POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: x\r\nExpect: 100-continue\r\n\r\n", 5, false),
        ("POST / HTTP/1.1\r\nContent-Length: 7\r\n\r\n", 7, false),
    ]

    @Test(arguments: Self.announcements)
    func tellsTheLengthAndTheExpectationOfTheHeadItRead(
        _ example: (head: String, contentLength: Int?, waitsForContinue: Bool)
    ) throws {
        var parser = HTTPRequestParser(limits: Self.limits)
        // A request before it announced the opposite, so that nothing carries over from one head to the next.
        var buffer = ByteBuffer(
            string: "POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc" + example.head)
        for _ in 0..<3 { _ = try parser.next(&buffer) }
        #expect(parser.contentLength == 3 && parser.waitsForContinue)
        guard case .head = try parser.next(&buffer) else {
            Issue.record("no head in \(example.head)")
            return
        }
        #expect(parser.contentLength == example.contentLength, "\(example.head)")
        #expect(parser.waitsForContinue == example.waitsForContinue, "\(example.head)")
    }

    @Test func waitsForTheRestOfAHead() {
        let (parts, error) = Self.parse("GET / HTTP/1.1\r\nHost: x\r\n")
        #expect(error == nil)
        #expect(parts.isEmpty)
    }

    static let invalid: [String] = [
        "GARBAGE\r\n\r\n",
        "GET /\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.1\n\n",
        "GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "GET /\u{7F} HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
        "GET / HTTP/1.1\r\nName : v\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\u{1}c\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\n",
    ]

    @Test(arguments: Self.invalid)
    func refusesWhatIsNotStrictHTTP1(_ text: String) {
        for step in [0, 1] {
            let (_, error) = Self.parse(text, step: step)
            guard case .invalid = error else {
                Issue.record("\(text.debugDescription) fed by \(step): \(String(describing: error))")
                continue
            }
        }
    }

    @Test func refusesAHeadOverItsLimits() {
        let longTarget = "GET /" + String(repeating: "a", count: 250) + " HTTP/1.1\r\n\r\n"
        let longHeaders = "GET / HTTP/1.1\r\nA: " + String(repeating: "v", count: 400) + "\r\n\r\n"
        let manyHeaders = "GET / HTTP/1.1\r\n" + String(repeating: "A: b\r\n", count: 9) + "\r\n"
        let endless = "GET / HTTP/1.1\r\nA: " + String(repeating: "v", count: 600)
        for text in [longTarget, longHeaders, manyHeaders, endless] {
            #expect(Self.parse(text).error == .headTooLarge, "\(text.prefix(30))")
            #expect(Self.parse(text, step: 1).error == .headTooLarge, "\(text.prefix(30))")
        }
    }

    @Test func failsForGoodAfterAnError() throws {
        var parser = HTTPRequestParser(limits: Self.limits)
        var buffer = ByteBuffer(string: "BAD REQUEST\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        #expect(throws: HTTPRequestParser.ParseError.self) { try parser.next(&buffer) }
        #expect(throws: HTTPRequestParser.ParseError.self) { try parser.next(&buffer) }
    }

    @Test func bodyPartsAreSlicesOfTheReceivedBytes() throws {
        var parser = HTTPRequestParser(limits: Self.limits)
        var buffer = ByteBuffer(string: "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        _ = try parser.next(&buffer)
        let bodyStart = buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        guard case .body(let body) = try parser.next(&buffer) else {
            Issue.record("no body")
            return
        }
        #expect(String(buffer: body) == "abc")
        #expect(body.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == bodyStart)
        #expect(parser.pendingEnd() == .end(nil))
    }
}
