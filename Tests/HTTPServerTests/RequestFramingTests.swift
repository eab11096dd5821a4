import EventBroker
import Testing

/// How the server reads request framing over a real socket: pipelined requests in one write, chunked bodies, and
/// the framings that are refused because two readers could disagree on where a request ends.
@Suite struct RequestFramingTests {
    @Test func pipelinedRequestsInOneWriteAreAnsweredInOrder() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        try client.send(
            "POST /api/events/publish?topic=f HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\none"
                + "POST /api/events/publish?topic=f HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n"
                + "GET /api/events/history?topic=f HTTP/1.1\r\nHost: x\r\n\r\n")
        let first = try client.readResponse()
        let second = try client.readResponse()
        let history = try client.readResponse()
        #expect(first.status == 200)
        #expect(second.status == 200)
        #expect(history.status == 200)
        let events = try history.json()["events"]
        guard case .array(let list) = events else {
            Issue.record("no events in \(history.body)")
            return
        }
        #expect(list.map { $0["data"] } == [.string("one"), .string("two")])
        #expect(try first.json()["id"] != nil)
        try await server.stop()
    }

    @Test func requestArrivingOneByteAtATimeIsAnswered() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        let request =
            "POST /api/events/publish?topic=slow HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nslow"
        for byte in request.utf8 { try client.send([byte]) }
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(try server.request("GET", "/api/topics/slow").status == 200)
        try await server.stop()
    }

    static let ambiguous: [(name: String, request: String)] = [
        (
            "Content-Length and Transfer-Encoding",
            "POST /api/events/publish?topic=a HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        (
            "two different lengths",
            "POST /api/events/publish?topic=a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
        ),
        (
            "a transfer coding other than chunked",
            "POST /api/events/publish?topic=a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        ),
        ("a bare LF", "GET /api/health HTTP/1.1\nHost: x\n\n"),
        ("a folded header", "GET /api/health HTTP/1.1\r\nHost: x\r\n y\r\n\r\n"),
        ("a space before the colon", "GET /api/health HTTP/1.1\r\nHost : x\r\n\r\n"),
        ("HTTP/2 on this port", "GET /api/health HTTP/2.0\r\nHost: x\r\n\r\n"),
    ]

    @Test(arguments: Self.ambiguous)
    func ambiguousFramingGetsA400AndTheConnectionCloses(_ input: (name: String, request: String)) async throws {
        let server = try await TestServer()
        let client = try server.connect()
        try client.send(input.request)
        let response = try client.readResponse()
        #expect(response.status == 400, "\(input.name)")
        #expect(response.errorCode == "bad_request", "\(input.name): \(response.body)")
        #expect(response.header("Connection") == "close", "\(input.name)")
        try client.waitForClose()
        // Nothing was published by the refused request.
        #expect(try server.request("GET", "/api/topics/a").status == 404, "\(input.name)")
        try await server.stop()
    }
}
