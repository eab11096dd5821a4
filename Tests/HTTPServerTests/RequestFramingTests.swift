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

    // MARK: Expect: 100-continue

    @Test func aRequestExpectingContinueGetsA100BeforeItsBody() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        try client.send(
            "POST /api/events/publish?topic=expect HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                + "Expect: 100-Continue\r\nContent-Length: 5\r\n\r\n")
        // The client waits for the 100 before it sends the body.
        let interim = try client.readHead(timeout: .seconds(2))
        #expect(interim.status == 100)
        #expect(interim.headers.isEmpty)
        try client.send("hello")
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(try server.request("GET", "/api/topics/expect").status == 200)
        // The connection stays usable, and a request without the expectation gets no 100.
        let next = try client.request("GET", "/api/health")
        #expect(next.status == 200)
        try await server.stop()
    }

    @Test func aBodySentWithoutWaitingGetsNo100() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        try client.send(
            "POST /api/events/publish?topic=eager HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                + "Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
        let response = try client.readResponse()
        #expect(response.status == 200)
        try await server.stop()
    }

    @Test func aRefusedRequestExpectingContinueIsAnsweredAtOnceAndClosed() async throws {
        let server = try await TestServer()
        for (target, status) in [("/api/nowhere", 404), ("/api/health", 405)] {
            let client = try server.connect()
            try client.send(
                "POST \(target) HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
            // No body follows: the answer must not wait for one.
            let response = try client.readResponse(timeout: .seconds(2))
            #expect(response.status == status, "\(target)")
            #expect(response.header("Connection") == "close", "\(target)")
            try client.waitForClose()
        }
        try await server.stop()
    }

    @Test func anHTTP10RequestGetsNo100() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        try client.send(
            "POST /api/events/publish?topic=old HTTP/1.0\r\nHost: x\r\nContent-Type: text/plain\r\n"
                + "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        #expect(throws: RawConnection.TimedOut.self) { try client.readHead(timeout: .milliseconds(300)) }
        try client.send("old")
        let response = try client.readResponse()
        #expect(response.status == 200)
        try await server.stop()
    }
}
