import BrokerClient
import NIOCore
import NIOWebSocket
import Testing

@Suite struct WebSocketClientTests {
    /// Thrown from `run`'s callback to stop it.
    private struct Stop: Error {}

    private static let connected = #"{"type":"connected","clientId":"0123456789abcde","topics":["orders"]}"#
    private static let connectedData = #"{"clientId":"0123456789abcde","topics":["orders"]}"#

    /// The `run` events as comparable text.
    private static func describe(_ event: WebSocketClient.Event) -> String {
        switch event {
        case .connected(let lastEventID):
            return "connected \(lastEventID ?? "-")"
        case .message(let message):
            return "message \(message.id ?? "-") \(message.lastEventID) \(message.event) \(message.data)"
        case .serverError(let error):
            return "server error \(error)"
        case .disconnected(let error, let delay):
            let closeCode = (error as? BrokerClientError)?.closeCode.map { String($0) } ?? "none"
            return "disconnected close \(closeCode) \(delay)"
        }
    }

    /// The note a script makes of the client's frame: opcode, whether masked, payload (a close frame's code).
    private static func note(_ frame: WebSocketFrame) -> String {
        var payload = frame.unmaskedData
        let masked = frame.maskKey == nil ? "unmasked" : "masked"
        switch frame.opcode {
        case .connectionClose:
            return "close \(masked) \(payload.readInteger(as: UInt16.self).map { String($0) } ?? "-")"
        case .pong:
            return "pong \(masked) \(String(buffer: payload))"
        default:
            return "\(frame.opcode) \(masked) \(String(buffer: payload))"
        }
    }

    @Test func runDeliversMessagesAnswersPingAndResumesAfterGoingAway() async throws {
        try await withTestTimeout {
            let server = try await WebSocketTestServer.start()
            async let served = server.serve([
                { peer in
                    try await peer.send(.text, Self.connected)
                    // One event in two fragments, split inside a member name.
                    try await peer.send(
                        .text, #"{"type":"event","id":"1763780248000001","topic":"orders","eve"#, fin: false)
                    try await peer.send(.continuation, #"nt":"created","data":"first"}"#)
                    try await peer.send(
                        .text,
                        #"{"type":"event","id":"1763780248000002","topics":["orders","audit"],"data":{"b":1.50,"a":[true,null]}}"#
                    )
                    try await peer.send(.ping, "hb-1")
                    let pong = try await peer.expectFrame(.pong)
                    try await peer.sendClose(code: 1001, reason: "shutting down")
                    let close = try await peer.expectFrame(.connectionClose)
                    return [Self.note(pong), Self.note(close)]
                },
                { peer in
                    try await peer.send(.text, Self.connected)
                    try await peer.send(
                        .text, #"{"type":"event","id":"1763780248000003","topic":"orders","data":"third"}"#)
                    let close = try await peer.expectFrame(.connectionClose)
                    return [Self.note(close)]
                },
            ])

            let url = try BrokerURL(webSocket: "ws://127.0.0.1:\(server.port)/api/ws?topic=orders")
            let client = WebSocketClient(url: url, reconnectPolicy: SSEReconnectPolicy(initialDelay: .milliseconds(10)))
            var log: [String] = []
            await #expect(throws: Stop.self) {
                try await client.run { event in
                    log.append(Self.describe(event))
                    if case .message(let message) = event, message.id == "1763780248000003" {
                        throw Stop()
                    }
                }
            }
            #expect(
                log == [
                    "connected -",
                    "message -  connected \(Self.connectedData)",
                    "message 1763780248000001 1763780248000001 created first",
                    #"message 1763780248000002 1763780248000002 message {"b":1.50,"a":[true,null]}"#,
                    "disconnected close 1001 \(Duration.milliseconds(10))",
                    "connected 1763780248000002",
                    "message - 1763780248000002 connected \(Self.connectedData)",
                    "message 1763780248000003 1763780248000003 message third",
                ]
            )
            let connections = try await served
            #expect(
                connections.map(\.requestTarget) == [
                    "/api/ws?topic=orders", "/api/ws?topic=orders&lastEventId=1763780248000002",
                ])
            #expect(connections.map(\.notes) == [["pong masked hb-1", "close masked 1001"], ["close masked 1000"]])
        }
    }

    @Test func connectReturnsTheBrokersCloseAndReportsErrorsOnlyToRun() async throws {
        try await withTestTimeout {
            let server = try await WebSocketTestServer.start()
            let script: WebSocketTestServer.Script = { peer in
                try await peer.send(.text, #"{"type":"error","code":"invalid_message","message":"Nope.","ref":3}"#)
                try await peer.send(.text, #"{"type":"ack","ref":4,"topics":["a"]}"#)
                try await peer.send(.text, #"{"type":"event","id":"5","data":"x"}"#)
                try await peer.sendClose(code: 1000, reason: "")
                return [Self.note(try await peer.expectFrame(.connectionClose))]
            }
            async let served = server.serve([script])
            let client = try WebSocketClient(
                url: BrokerURL(webSocket: "ws://127.0.0.1:\(server.port)/api/ws?topic=a&lastEventId=old")
            )
            var messages: [SSEMessage] = []
            let (parser, close) = try await client.connect(lastEventID: "4") { messages.append($0) }
            #expect(messages == [SSEMessage(id: "5", lastEventID: "5", data: "x")])
            #expect(parser.lastEventID == "5")
            #expect(close.closeCode == 1000)
            #expect(close.description == "The broker closed the WebSocket with 1000 (normal closure)")
            let connections = try await served
            #expect(connections.map(\.requestTarget) == ["/api/ws?topic=a&lastEventId=4"])
            #expect(connections.map(\.notes) == [["close masked 1000"]])
        }
    }

    @Test func runReportsServerErrorsAndReadsOn() async throws {
        try await withTestTimeout {
            let server = try await WebSocketTestServer.start()
            let script: WebSocketTestServer.Script = { peer in
                try await peer.send(.text, #"{"type":"error","code":"invalid_message","message":"Nope.","ref":3}"#)
                try await peer.send(.text, #"{"type":"event","id":"5","data":"x"}"#)
                return [Self.note(try await peer.expectFrame(.connectionClose))]
            }
            async let served = server.serve([script])
            let client = try WebSocketClient(url: BrokerURL(webSocket: "ws://127.0.0.1:\(server.port)/api/ws"))
            var log: [String] = []
            await #expect(throws: Stop.self) {
                try await client.run { event in
                    log.append(Self.describe(event))
                    if case .message = event {
                        throw Stop()
                    }
                }
            }
            #expect(log == ["connected -", "server error Nope. (invalid_message, ref 3)", "message 5 5 message x"])
            #expect(try await served.map(\.notes) == [["close masked 1000"]])
        }
    }

    @Test func runStopsOnRefusedUpgrade() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            let body = #"{"error":{"code":"invalid_topic","message":"Nope."}}"#
            async let requests = server.serve([
                .init([
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
                        + "Connection: close\r\n\r\n\(body)"
                ])
            ])
            let client = try WebSocketClient(
                url: BrokerURL(webSocket: server.url("/api/ws?topic=a%20b")),
                headers: [("Authorization", "Bearer t")]
            )
            var log: [String] = []
            await #expect {
                try await client.run { log.append(Self.describe($0)) }
            } throws: { error in
                guard let error = error as? BrokerClientError else { return false }
                return error.code == .unexpectedResponse && error.status == 400 && error.body == body
                    && !error.isRetryable
            }
            #expect(log.isEmpty)
            let request = try #require(try await requests.first)
            #expect(request.hasPrefix("GET /api/ws?topic=a%20b HTTP/1.1\r\n"))
            #expect(request.lowercased().contains("\r\nupgrade: websocket\r\n"))
            #expect(request.lowercased().contains("\r\nsec-websocket-version: 13\r\n"))
            #expect(request.contains("\r\nHost: 127.0.0.1:\(server.port)\r\n"))
            #expect(request.contains("\r\nAuthorization: Bearer t\r\n"))
        }
    }

    @Test func failsWhenTheUpgradeIsNotAnsweredInTime() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([.init([], holdOpen: true)])
            let client = try WebSocketClient(
                url: BrokerURL(webSocket: server.url("/api/ws")),
                connectTimeout: .milliseconds(300)
            )
            await #expect {
                try await client.connect { _ in }
            } throws: { error in
                (error as? BrokerClientError)?.code == .timeout
            }
            _ = try await requests
        }
    }

    @Test func upgradeURLReplacesTheResumePoint() throws {
        let client = try WebSocketClient(url: BrokerURL(webSocket: "ws://h/api/ws?topic=a&lastEventId=1&topic=b"))
        #expect(client.upgradeURL(lastEventID: "").requestTarget == "/api/ws?topic=a&lastEventId=1&topic=b")
        #expect(client.upgradeURL(lastEventID: "9 x").requestTarget == "/api/ws?topic=a&topic=b&lastEventId=9%20x")
        let bare = try WebSocketClient(url: BrokerURL(webSocket: "ws://h/api/ws?lastEventId=1"))
        #expect(bare.upgradeURL(lastEventID: "2").requestTarget == "/api/ws?lastEventId=2")
    }
}
