import EventBroker
import Testing

/// Every bad input gets the documented status and JSON error code, and the server stays healthy.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct BadInputTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let method: String
        let target: String
        var headers: [(String, String)] = []
        var body: [UInt8] = []
        let status: Int
        let code: String

        var testDescription: String { self.name }

        static func json(_ name: String, _ target: String, _ body: String, _ status: Int, _ code: String) -> Case {
            Case(
                name: name, method: "POST", target: target, headers: [("Content-Type", "application/json")],
                body: Array(body.utf8), status: status, code: code)
        }
    }

    static let publish = "/api/events/publish"
    static let cases: [Case] = [
        .json("malformed JSON", publish, #"{"topic": "a", "data": "#, 400, "invalid_json"),
        .json("JSON that is not an object", publish, #"["a"]"#, 400, "invalid_json"),
        .json("topic of the wrong type", publish, #"{"topic": 5, "data": "x"}"#, 400, "invalid_field"),
        .json("topics not an array", publish, #"{"topics": "a", "data": "x"}"#, 400, "invalid_field"),
        .json("topics with a non-string", publish, #"{"topics": ["a", 1], "data": "x"}"#, 400, "invalid_field"),
        .json("missing topic", publish, #"{"data": "x"}"#, 400, "missing_field"),
        .json("missing data", publish, #"{"topic": "a"}"#, 400, "missing_field"),
        .json("empty data", publish, #"{"topic": "a", "data": ""}"#, 400, "empty_data"),
        .json("topic with a space", publish, #"{"topic": "a b", "data": "x"}"#, 400, "invalid_topic"),
        .json("topic with an empty segment", publish, #"{"topic": "a//b", "data": "x"}"#, 400, "invalid_topic"),
        .json(
            "topic over 256 bytes", publish, #"{"topic": "\#(String(repeating: "t", count: 257))", "data": "x"}"#, 400,
            "invalid_topic"),
        .json("reserved topic", publish, #"{"topic": "$broadcast", "data": "x"}"#, 400, "reserved_topic"),
        .json(
            "too many topics", publish,
            #"{"topics": [\#((1...33).map { "\"t\($0)\"" }.joined(separator: ","))], "data": "x"}"#, 400,
            "too_many_topics"),
        .json(
            "event with a line break", publish, #"{"topic": "a", "data": "x", "event": "a\nb"}"#, 400, "invalid_event"),
        .json("negative retry", publish, #"{"topic": "a", "data": "x", "retry": -1}"#, 400, "invalid_field"),
        .json("private as a string", publish, #"{"topic": "a", "data": "x", "private": "yes"}"#, 400, "invalid_field"),
        Case(
            name: "unsupported content type", method: "POST", target: publish,
            headers: [("Content-Type", "application/xml")], body: Array("<a/>".utf8), status: 415,
            code: "unsupported_media_type"),
        Case(
            name: "raw body that is not UTF-8", method: "POST", target: publish + "?topic=a",
            headers: [("Content-Type", "text/plain")], body: [0xFF, 0xFE, 0x41], status: 400, code: "invalid_data"),
        Case(
            name: "bad Idempotency-Key", method: "POST", target: publish,
            headers: [("Content-Type", "application/json"), ("Idempotency-Key", String(repeating: "k", count: 300))],
            body: Array(#"{"topic": "a", "data": "x"}"#.utf8), status: 400, code: "invalid_header"),
        Case(
            name: "body over the limit", method: "POST", target: publish + "?topic=a",
            headers: [("Content-Type", "text/plain")], body: Array(repeating: 0x61, count: 70_000), status: 413,
            code: "payload_too_large"),
        Case(name: "unknown path", method: "GET", target: "/api/nothing", status: 404, code: "not_found"),
        Case(name: "wrong method", method: "DELETE", target: "/api/events", status: 405, code: "method_not_allowed"),
        Case(
            name: "headers over the limit", method: "GET", target: "/api/health",
            headers: [("X-Padding", String(repeating: "p", count: 20_000))], status: 431, code: "headers_too_large"),
        Case(
            name: "stream without a topic", method: "GET", target: "/api/events", status: 400, code: "invalid_selector"),
        Case(
            name: "stream with a bad selector", method: "GET", target: "/api/events?topic=a/**/b", status: 400,
            code: "invalid_selector"),
        Case(
            name: "history limit 0", method: "GET", target: "/api/events/history?topic=a&limit=0", status: 400,
            code: "invalid_parameter"),
        Case(
            name: "history wait too long", method: "GET", target: "/api/events/history?topic=a&wait=61", status: 400,
            code: "invalid_parameter"),
        Case(
            name: "history after not an id", method: "GET", target: "/api/events/history?topic=a&after=abc",
            status: 400, code: "invalid_parameter"),
        .json(
            "direct message to an unknown client", "/api/message", #"{"to": "0123456789abcdef", "data": "x"}"#, 404,
            "client_not_found"),
        .json("direct message without a recipient", "/api/message", #"{"data": "x"}"#, 400, "missing_field"),
        .json(
            "broadcast with a topic", "/api/messages/broadcast", #"{"topic": "a", "data": "x"}"#, 400, "invalid_field"),
        Case(
            name: "unknown topic", method: "GET", target: "/api/topics/never/used", status: 404, code: "topic_not_found"
        ),
        Case(
            name: "invalid topic in path", method: "GET", target: "/api/topics/a%20b", status: 400,
            code: "invalid_topic"),
    ]

    @Test(arguments: Self.cases)
    func badInputIsAnsweredWithItsStatusAndCode(_ badInput: Case) async throws {
        let server = try await TestServer {
            $0.maxBodyBytes = 64 * 1024
            $0.maxHeaderBytes = 8 * 1024
        }
        let response = try server.connect().request(
            badInput.method, badInput.target, headers: badInput.headers, body: badInput.body)
        #expect(response.status == badInput.status)
        #expect(response.errorCode == badInput.code, "body: \(response.text)")
        #expect(response.header("Content-Type") == "application/json")
        if badInput.status == 405 { #expect(response.header("Allow") == "GET, OPTIONS") }
        // The server is still healthy afterwards.
        let health = try server.request("GET", "/api/health")
        #expect(health.status == 200)
        #expect(try health.json()["status"] == .string("ok"))
        try await server.stop()
    }

    @Test func tableCoversAtLeastTwentyBadInputs() {
        #expect(Self.cases.count >= 20)
    }

    @Test func malformedHTTPGetsAJSON400AndTheConnectionIsClosed() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        try client.send("GARBAGE\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 400)
        #expect(response.errorCode == "bad_request")
        try client.waitForClose()
        try await server.stop()
    }

    @Test func chunkedBodyOverTheLimitIsRefusedAndClosed() async throws {
        let server = try await TestServer { $0.maxBodyBytes = 1024 }
        let client = try server.connect()
        try client.send(
            "POST /api/events/publish?topic=a HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in 0..<3 { try client.send("200\r\n" + String(repeating: "a", count: 512) + "\r\n") }
        let response = try client.readResponse()
        #expect(response.status == 413)
        #expect(response.errorCode == "payload_too_large")
        try client.waitForClose()
        try await server.stop()
    }

    @Test func requestThatNeverFinishesIsTimedOutWith408() async throws {
        let server = try await TestServer { $0.requestTimeout = .milliseconds(300) }
        let started = ContinuousClock.now
        let partialLine = try server.connect()
        try partialLine.send("GET /api/hea")
        let partialBody = try server.connect()
        try partialBody.send(
            "POST /api/events/publish?topic=a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-part")
        for client in [partialLine, partialBody] {
            let response = try client.readResponse()
            #expect(response.status == 408)
            #expect(response.errorCode == "request_timeout")
            try client.waitForClose()
        }
        #expect(ContinuousClock.now - started < .seconds(3))
        #expect(try server.request("GET", "/api/health").status == 200)
        try await server.stop()
    }

    @Test func idleKeepAliveConnectionIsClosed() async throws {
        let server = try await TestServer { $0.idleTimeout = .milliseconds(300) }
        let client = try server.connect()
        #expect(try client.request("GET", "/api/health").status == 200)
        try client.waitForClose(timeout: .seconds(3))
        try await server.stop()
    }

    @Test func keepAliveConnectionServesManyRequests() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        for index in 0..<5 {
            let response = try client.request(
                "POST", "/api/events/publish?topic=k", headers: [("Content-Type", "text/plain")],
                body: Array("n\(index)".utf8))
            #expect(response.status == 200)
        }
        #expect(try client.request("GET", "/api/topics/k").status == 200)
        try await server.stop()
    }
}
