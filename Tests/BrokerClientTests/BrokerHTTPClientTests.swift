import BrokerClient
import Testing

@Suite struct BrokerHTTPClientTests {
    @Test func sendsRequestWithBodyAndCollectsResponse() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([
                .init([
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n", "{\"ok\":",
                    "true}",
                ])
            ])
            let response = try await BrokerHTTPClient.request(
                method: "POST",
                url: server.url("/api/events/publish"),
                headers: [("Content-Type", "application/json"), ("Idempotency-Key", "k1")],
                body: "{\"a\":\"\u{E9}\"}"
            )
            #expect(response.status == 200)
            #expect(response.body == "{\"ok\":true}")
            #expect(response.headers.contains { $0.0 == "Content-Type" && $0.1 == "application/json" })

            let request = try #require(try await requests.first)
            #expect(request.hasPrefix("POST /api/events/publish HTTP/1.1\r\n"))
            #expect(request.contains("\r\nHost: 127.0.0.1:\(server.port)\r\n"))
            #expect(request.contains("\r\nContent-Type: application/json\r\n"))
            #expect(request.contains("\r\nIdempotency-Key: k1\r\n"))
            #expect(request.contains("\r\nContent-Length: 10\r\n"))
            #expect(request.contains("\r\nConnection: close\r\n"))
            #expect(request.hasSuffix("\r\n\r\n{\"a\":\"\u{E9}\"}"))
        }
    }

    @Test func sendsGetWithoutBodyOrContentLength() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([.init(["HTTP/1.1 204 No Content\r\n\r\n"])])
            let response = try await BrokerHTTPClient.request(url: server.url("/api/health?x=1"))
            #expect(response.status == 204)
            #expect(response.body == "")
            let request = try #require(try await requests.first)
            #expect(request.hasPrefix("GET /api/health?x=1 HTTP/1.1\r\n"))
            #expect(!request.lowercased().contains("content-length"))
        }
    }

    @Test func returnsErrorStatusAndChunkedBodyInsteadOfThrowing() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            let error = "{\"error\":{\"code\":\"invalid_topic\",\"message\":\"Invalid topic 'a//b'\"}}"
            async let requests = server.serve([
                .init([
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                    chunk(String(error.prefix(20))), chunk(String(error.dropFirst(20))), "0\r\n\r\n",
                ])
            ])
            let response = try await BrokerHTTPClient.request(method: "POST", url: server.url("/x"), body: "{}")
            #expect(response.status == 400)
            #expect(response.body == error)
            _ = try await requests
        }
    }

    @Test func readsBodyThatEndsWithConnectionClose() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([
                .init(["HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", "hello ", "world"])
            ])
            let response = try await BrokerHTTPClient.request(url: server.url())
            #expect(response.body == "hello world")
            _ = try await requests
        }
    }

    /// A server that refuses a body by its `Content-Length` answers before reading it and closes; the refusal is what
    /// the caller gets, not the failed write of the rest of the body.
    @Test func returnsAnAnswerGivenBeforeTheBodyWasSent() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            let refusal = #"{"error":{"code":"payload_too_large"}}"#
            async let requests = server.serve([
                .init(
                    ["HTTP/1.1 413 Content Too Large\r\nContent-Length: \(refusal.utf8.count)\r\n\r\n\(refusal)"],
                    reads: .head)
            ])
            let response = try await BrokerHTTPClient.request(
                method: "POST", url: server.url("/api/events/publish"),
                body: String(repeating: "x", count: 32 * 1024 * 1024))
            #expect(response.status == 413)
            #expect(response.body == refusal)
            let request = try #require(try await requests.first)
            #expect(request.contains("\r\nContent-Length: 33554432\r\n"))
        }
    }

    @Test func throwsWhenConnectionClosesBeforeResponseEnds() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([.init(["HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"])])
            await #expect(throws: (any Error).self) {
                try await BrokerHTTPClient.request(url: server.url())
            }
            _ = try await requests
        }
    }

    @Test func timesOutWhenServerNeverAnswers() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            async let requests = server.serve([.init([], holdOpen: true)])
            let clock = ContinuousClock()
            let start = clock.now
            await #expect {
                try await BrokerHTTPClient.request(url: server.url(), timeout: .milliseconds(200))
            } throws: { error in
                (error as? BrokerClientError)?.code == .timeout
            }
            #expect(clock.now - start < .seconds(5))
            _ = try await requests
        }
    }

    @Test func throwsConnectionFailedWhenNothingListens() async throws {
        try await withTestTimeout {
            let server = try await CannedHTTPServer.start()
            try await server.close()
            await #expect {
                try await BrokerHTTPClient.request(url: server.url(), timeout: .seconds(5))
            } throws: { error in
                guard let error = error as? BrokerClientError else { return false }
                return error.code == .connectionFailed && error.isRetryable
                    && error.description == "Could not connect to 127.0.0.1:\(server.port): Connection refused"
            }
        }
    }

    @Test func rejectsHTTPSURLBeforeConnecting() async throws {
        await #expect(throws: BrokerURLError.self) {
            try await BrokerHTTPClient.request(url: "https://127.0.0.1:1/")
        }
    }
}
