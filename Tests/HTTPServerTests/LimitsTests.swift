import EventBroker
import Testing

/// Connection and publish limits over real sockets: each refusal with its status, code and `Retry-After`, the SSE
/// endpoint's retryable refusal, slots given back on close, and a slow client holding one slot only briefly.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct LimitsTests {
    @Test func connectionOverTheServerLimitGets503WithRetryAfterAndCloses() async throws {
        let server = try await TestServer { $0.maxConnections = 2 }
        let first = try server.connect()
        let second = try server.connect()
        #expect(try first.request("GET", "/api/health").status == 200)
        #expect(try second.request("GET", "/api/health").status == 200)
        let third = try server.connect()
        let refused = try third.request("GET", "/api/health")
        #expect(refused.status == 503)
        #expect(refused.errorCode == "server_full")
        #expect(refused.header("Retry-After") == "5")
        try third.waitForClose()
        // A slot comes back when a connection closes.
        first.shutdown()
        #expect(
            try server.waitUntil {
                (try? server.connect().request("GET", "/api/health").status) == 200
            })
        try await server.stop()
    }

    @Test func eventStreamOverTheLimitIsAStreamThatSaysWhenToRetry() async throws {
        let server = try await TestServer { $0.maxConnections = 1 }
        let holder = try server.connect()
        #expect(try holder.request("GET", "/api/health").status == 200)
        let refused = try server.connect()
        let head = try refused.openStream("/api/events?topic=full")
        #expect(head.status == 200, "a browser stops retrying on anything but 200 text/event-stream")
        #expect(head.headers.first { $0.name == "Content-Type" }?.value == "text/event-stream; charset=utf-8")
        let end = try refused.readMessagesUntilEnd()
        #expect(end.retry == 5000)
        #expect(end.messages.isEmpty)
        try refused.waitForClose()
        try await server.stop()
    }

    @Test func connectionsOverThePerAddressLimitGet429() async throws {
        let server = try await TestServer { $0.maxConnectionsPerAddress = 1 }
        let first = try server.connect()
        #expect(try first.request("GET", "/api/health").status == 200)
        let second = try server.connect()
        let refused = try second.request("GET", "/api/topics")
        #expect(refused.status == 429)
        #expect(refused.errorCode == "too_many_connections")
        #expect(refused.header("Retry-After") == "5")
        try second.waitForClose()
        // A WebSocket upgrade is refused the same way, before any upgrade.
        let third = try server.connect()
        #expect(try third.upgrade().status == 429)
        try await server.stop()
    }

    @Test func slowClientHoldsItsOneSlotOnlyUntilTheRequestTimeout() async throws {
        let server = try await TestServer {
            $0.maxConnections = 1
            $0.requestTimeout = .milliseconds(500)
        }
        let slow = try server.connect()
        try slow.send("GET /api/health HTTP/1.1\r\nHost: x\r\n")
        #expect(try server.waitUntil(timeout: .seconds(1)) { server.limitedConnections == 1 })
        let started = ContinuousClock.now
        try slow.waitForClose(timeout: .seconds(3))
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(
            try server.waitUntil {
                (try? server.connect().request("GET", "/api/health").status) == 200
            })
        try await server.stop()
    }

    @Test func publishesOverTheRateGet429WithRetryAfterOnRESTAndAnErrorOnWebSocket() async throws {
        let server = try await TestServer {
            $0.publishRate = 2
            $0.publishBurst = 3
        }
        let client = try server.connect()
        var statuses: [Int] = []
        for index in 0..<4 {
            let response = try client.request(
                "POST", "/api/events/publish", headers: [("Content-Type", "application/json")],
                body: Array(#"{"topic":"rate","data":"\#(index)"}"#.utf8))
            statuses.append(response.status)
            if response.status == 429 {
                #expect(response.errorCode == "rate_limited")
                #expect(response.header("Retry-After") == "1")
            }
        }
        #expect(statuses == [200, 200, 200, 429])
        let socket = try server.connect()
        try socket.upgrade()
        _ = try socket.readMessage(type: "connected")
        try socket.sendText(#"{"type":"publish","topic":"rate","data":"ws","ref":"r"}"#)
        let error = try socket.readMessage(type: "error")
        #expect(error["code"] == .string("rate_limited"))
        #expect(error["ref"] == .string("r"))
        // Two tokens a second: after 0.6 s there is one again.
        try await Task.sleep(for: .milliseconds(600))
        try socket.sendText(#"{"type":"publish","topic":"rate","data":"ws","ref":"again"}"#)
        #expect(try socket.readMessage(type: "ack")["ref"] == .string("again"))
        try await server.stop()
    }
}
