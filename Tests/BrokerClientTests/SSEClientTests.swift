import BrokerClient
import Testing

@Suite struct SSEClientTests {
    /// Thrown from `run`'s callback to stop it.
    private struct Stop: Error {}

    private static let connectedFrame =
        "retry: 3000\nevent: connected\ndata: {\"clientId\":\"c1\",\"topics\":[\"a/b\"]}\n\n"
    private static let connectedMessage = SSEMessage(
        event: "connected",
        data: "{\"clientId\":\"c1\",\"topics\":[\"a/b\"]}",
        retry: 3000
    )

    private static func errorAnswer(_ status: String, code: String) -> String {
        let body = "{\"error\":{\"code\":\"\(code)\",\"message\":\"Nope.\"}}"
        return "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Connection: close\r\n\r\n\(body)"
    }

    /// The `run` events as comparable text.
    private static func describe(_ event: SSEClient.Event) -> String {
        switch event {
        case .connected(let lastEventID): "connected \(lastEventID ?? "-")"
        case .message(let message): "message \(message.id ?? "-") \(message.event) \(message.data)"
        case .disconnected(let error, let delay): "disconnected \(error == nil ? "cleanly" : "with error") \(delay)"
        }
    }

    @Test func readsChunkedEventStreamOverSocket() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            let stream =
                Self.connectedFrame + ": hb\n\n" + "id: 1\nevent: update\ndata: a\ndata: caf\u{E9}\n\n"
                + "id: 2\r\ndata: second\r\n\r\n"
            // Three HTTP chunks, written in 3-byte pieces: splits land in chunk headers, CRLFs and the é.
            let body =
                chunk(String(stream.prefix(30))) + chunk(String(stream.dropFirst(30).prefix(40)))
                + chunk(String(stream.dropFirst(70))) + "0\r\n\r\n"
            async let requests = server.serve([.init(head: eventStreamHead, body: body, pieceSize: 3)])

            let url = try BrokerURL(server.url("/api/events")).appendingQueryItem(name: "topic", value: "a/b")
            let client = SSEClient(url: url, headers: [("Authorization", "Bearer t")])
            var messages: [SSEMessage] = []
            let parser = try await client.connect(lastEventID: "0") { messages.append($0) }

            var resumedConnectedMessage = Self.connectedMessage
            resumedConnectedMessage.lastEventID = "0"
            #expect(
                messages == [
                    resumedConnectedMessage,
                    SSEMessage(id: "1", lastEventID: "1", event: "update", data: "a\ncaf\u{E9}"),
                    SSEMessage(id: "2", lastEventID: "2", data: "second"),
                ]
            )
            #expect(parser.commentCount == 1)
            #expect(parser.lastEventID == "2")
            #expect(parser.retry == 3000)

            let request = try #require(try await requests.first)
            #expect(request.hasPrefix("GET /api/events?topic=a/b HTTP/1.1\r\n"))
            #expect(request.contains("\r\nAccept: text/event-stream\r\n"))
            #expect(request.contains("\r\nLast-Event-ID: 0\r\n"))
            #expect(request.contains("\r\nAuthorization: Bearer t\r\n"))
            #expect(request.contains("\r\nHost: 127.0.0.1:\(server.port)\r\n"))
        }
    }

    @Test func sendsNoLastEventIDWhenThereIsNone() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([.init([eventStreamHead, "0\r\n\r\n"])])
            try await SSEClient(url: BrokerURL(server.url())).connect(lastEventID: "") { _ in }
            let request = try #require(try await requests.first)
            #expect(!request.lowercased().contains("last-event-id"))
        }
    }

    @Test func yieldsMessagesAsAsyncStream() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([
                .init([eventStreamHead, chunk(Self.connectedFrame), chunk("id: 5\ndata: x\n\n"), "0\r\n\r\n"])
            ])
            var messages: [SSEMessage] = []
            for try await message in try SSEClient(url: BrokerURL(server.url())).messages() {
                messages.append(message)
            }
            #expect(messages == [Self.connectedMessage, SSEMessage(id: "5", lastEventID: "5", data: "x")])
            _ = try await requests
        }
    }

    @Test func throwsStatusAndBodyForErrorAnswer() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([.init([Self.errorAnswer("400 Bad Request", code: "invalid_topic")])])
            await #expect {
                try await SSEClient(url: BrokerURL(server.url())).connect { _ in }
            } throws: { error in
                guard let error = error as? BrokerClientError else { return false }
                return error.code == .unexpectedResponse && error.status == 400
                    && error.body == "{\"error\":{\"code\":\"invalid_topic\",\"message\":\"Nope.\"}}"
                    && !error.isRetryable && error.description.contains("invalid_topic")
            }
            _ = try await requests
        }
    }

    @Test func rejectsOKAnswerThatIsNotEventStream() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([
                .init(["HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"])
            ])
            await #expect {
                try await SSEClient(url: BrokerURL(server.url())).connect { _ in }
            } throws: { error in
                guard let error = error as? BrokerClientError else { return false }
                return error.code == .unexpectedResponse && error.status == 200 && error.body == "{}"
                    && !error.isRetryable
            }
            _ = try await requests
        }
    }

    @Test func throwsWhenStreamIsCutInTheMiddleOfAnEvent() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([
                .init([eventStreamHead, chunk("id: 1\ndata: a\n\n"), chunk("id: 2\ndata: par")])
            ])
            var messages: [SSEMessage] = []
            await #expect(throws: (any Error).self) {
                try await SSEClient(url: BrokerURL(server.url())).connect { messages.append($0) }
            }
            #expect(messages == [SSEMessage(id: "1", lastEventID: "1", data: "a")])
            _ = try await requests
        }
    }

    @Test func dropsConnectionThatStaysSilentPastIdleTimeout() async throws {
        // The idle timer restarts with each read, so a first frame that comes late under load pushes the timeout
        // toward 10 s: the safety net is twice that.
        try await withTestTimeout(.seconds(20)) {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([.init([eventStreamHead, chunk(Self.connectedFrame)], holdOpen: true)])
            // Long enough for a loaded machine to deliver the first frame; the idle timer starts at connect. 2 s was
            // not: with every suite running in parallel on two cores, the frame once came later.
            let client = try SSEClient(url: BrokerURL(server.url()), idleTimeout: .seconds(5))
            var messages: [SSEMessage] = []
            await #expect {
                try await client.connect { messages.append($0) }
            } throws: { error in
                (error as? BrokerClientError)?.code == .idleTimeout
            }
            #expect(messages == [Self.connectedMessage])
            _ = try await requests
        }
    }

    @Test func runReconnectsAndResumesFromLastEventID() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([
                // Dropped without the last chunk, in the middle of event 3.
                .init([
                    eventStreamHead, chunk("retry: 20\nevent: connected\ndata: {}\n\n"),
                    chunk("id: 1\ndata: a\n\nid: 2\ndata: b\n\n"), chunk("id: 3\ndata: cut"),
                ]),
                .init(
                    [eventStreamHead, chunk("event: connected\ndata: {}\n\n"), chunk("id: 3\ndata: c\n\n")],
                    holdOpen: true
                ),
            ])
            let client = try SSEClient(url: BrokerURL(server.url("/api/events?topic=a")))
            var log: [String] = []
            await #expect(throws: Stop.self) {
                try await client.run { event in
                    log.append(Self.describe(event))
                    if case .message(let message) = event, message.id == "3" {
                        throw Stop()
                    }
                }
            }
            #expect(
                log == [
                    "connected -", "message - connected {}", "message 1 message a", "message 2 message b",
                    "disconnected with error \(Duration.milliseconds(20))",
                    "connected 2", "message - connected {}", "message 3 message c",
                ]
            )
            let received = try await requests
            #expect(received.count == 2)
            #expect(!received[0].lowercased().contains("last-event-id"))
            #expect(received[1].hasPrefix("GET /api/events?topic=a HTTP/1.1\r\n"))
            #expect(received[1].contains("\r\nLast-Event-ID: 2\r\n"))
        }
    }

    @Test func runBacksOffFailedAttemptsAndResetsAfterEvents() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            let unavailable = CannedHTTPServer.Script([
                Self.errorAnswer("503 Service Unavailable", code: "shutting_down")
            ])
            async let requests = server.serve([
                unavailable, unavailable,
                .init([eventStreamHead, chunk("id: 1\ndata: a\n\n"), "0\r\n\r\n"]),
                // Refused with a `retry:` hint and no event, as the broker does at its connection limit.
                .init([eventStreamHead, chunk("retry: 30\n\n"), "0\r\n\r\n"]),
                .init([eventStreamHead, chunk("id: 2\ndata: b\n\n")], holdOpen: true),
            ])
            let client = try SSEClient(
                url: BrokerURL(server.url()),
                reconnectPolicy: SSEReconnectPolicy(initialDelay: .milliseconds(10))
            )
            var log: [String] = []
            await #expect(throws: Stop.self) {
                try await client.run(lastEventID: "0") { event in
                    log.append(Self.describe(event))
                    if case .message(let message) = event, message.id == "2" {
                        throw Stop()
                    }
                }
            }
            #expect(
                log == [
                    "disconnected with error \(Duration.milliseconds(10))",
                    "disconnected with error \(Duration.milliseconds(20))",
                    "connected 0", "message 1 message a",
                    "disconnected cleanly \(Duration.milliseconds(10))",
                    "connected 1",
                    "disconnected cleanly \(Duration.milliseconds(60))",
                    "connected 1", "message 2 message b",
                ]
            )
            let received = try await requests
            #expect(received.map { $0.contains("\r\nLast-Event-ID: 0\r\n") } == [true, true, true, false, false])
            #expect(received.map { $0.contains("\r\nLast-Event-ID: 1\r\n") } == [false, false, false, true, true])
        }
    }

    @Test func runStopsOnFinalAnswer() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([.init([Self.errorAnswer("404 Not Found", code: "not_found")])])
            var log: [String] = []
            await #expect {
                try await SSEClient(url: BrokerURL(server.url())).run { log.append(Self.describe($0)) }
            } throws: { error in
                (error as? BrokerClientError)?.status == 404
            }
            #expect(log.isEmpty)
            #expect(try await requests.count == 1)
        }
    }

    @Test func runGivesUpAfterMaximumAttempts() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            let unavailable = CannedHTTPServer.Script([Self.errorAnswer("503 Service Unavailable", code: "over_limit")])
            async let requests = server.serve([unavailable, unavailable, unavailable])
            let client = try SSEClient(
                url: BrokerURL(server.url()),
                reconnectPolicy: SSEReconnectPolicy(initialDelay: .milliseconds(5), maximumAttempts: 2)
            )
            var disconnects = 0
            await #expect {
                try await client.run { event in
                    if case .disconnected = event { disconnects += 1 }
                }
            } throws: { error in
                (error as? BrokerClientError)?.status == 503
            }
            #expect(disconnects == 2)
            #expect(try await requests.count == 3)
        }
    }

    @Test func runStopsWhenTaskIsCancelled() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([.init([eventStreamHead, chunk(Self.connectedFrame)], holdOpen: true)])
            let client = try SSEClient(url: BrokerURL(server.url()))
            let (received, signal) = AsyncStream.makeStream(of: Void.self)
            let task = Task {
                try await client.run { event in
                    if case .message = event { signal.yield() }
                }
            }
            var iterator = received.makeAsyncIterator()
            await iterator.next()
            task.cancel()
            await #expect(throws: CancellationError.self) {
                try await task.value
            }
            _ = try await requests
        }
    }
}
