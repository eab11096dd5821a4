import EventBroker
import Testing

/// CORS over a real socket: `*` by default, an allow-list with credentials for listed origins only, preflights, the
/// event stream's head, and the `Origin` check on WebSocket upgrades.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct CORSTests {
    static let app = "https://app.example"
    static let other = "https://evil.example"

    static func headers(_ response: RawConnection.Response) -> [String: String] {
        Dictionary(response.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    @Test func anyOriginGetsAStarWithoutCredentialsByDefault() async throws {
        let server = try await TestServer()
        let response = try server.request("GET", "/api/health", headers: [("Origin", Self.other)])
        let headers = Self.headers(response)
        #expect(headers["Access-Control-Allow-Origin"] == "*")
        #expect(headers["Access-Control-Allow-Credentials"] == nil)
        #expect(headers["Access-Control-Expose-Headers"] == "Idempotent-Replayed, Retry-After")
        let plain = try server.request("GET", "/api/health")
        #expect(!plain.headers.contains { $0.name.hasPrefix("Access-Control") })
        try await server.stop()
    }

    @Test func listedOriginIsEchoedWithCredentialsAndAnUnlistedOneGetsNothing() async throws {
        let server = try await TestServer { $0.corsAllowedOrigins = [Self.app] }
        let listed = Self.headers(try server.request("GET", "/api/health", headers: [("Origin", Self.app)]))
        #expect(listed["Access-Control-Allow-Origin"] == Self.app)
        #expect(listed["Access-Control-Allow-Credentials"] == "true")
        #expect(listed["Vary"] == "Origin")
        let unlisted = Self.headers(try server.request("GET", "/api/health", headers: [("Origin", Self.other)]))
        #expect(unlisted["Access-Control-Allow-Origin"] == nil)
        #expect(unlisted["Access-Control-Allow-Credentials"] == nil)
        #expect(unlisted["Vary"] == "Origin")
        try await server.stop()
    }

    @Test func starBesideAListedOriginNeverComesWithCredentials() async throws {
        let server = try await TestServer { $0.corsAllowedOrigins = ["*", Self.app] }
        let listed = Self.headers(try server.request("GET", "/api/topics", headers: [("Origin", Self.app)]))
        #expect(listed["Access-Control-Allow-Origin"] == Self.app)
        #expect(listed["Access-Control-Allow-Credentials"] == "true")
        let other = Self.headers(try server.request("GET", "/api/topics", headers: [("Origin", Self.other)]))
        #expect(other["Access-Control-Allow-Origin"] == "*")
        #expect(other["Access-Control-Allow-Credentials"] == nil)
        try await server.stop()
    }

    @Test func preflightOfAListedOriginAllowsTheRouteMethodsAndCredentials() async throws {
        let server = try await TestServer { $0.corsAllowedOrigins = [Self.app] }
        let response = try server.request(
            "OPTIONS", "/api/events/publish",
            headers: [("Origin", Self.app), ("Access-Control-Request-Method", "POST")])
        #expect(response.status == 204)
        let headers = Self.headers(response)
        #expect(headers["Access-Control-Allow-Origin"] == Self.app)
        #expect(headers["Access-Control-Allow-Credentials"] == "true")
        #expect(headers["Access-Control-Allow-Methods"] == "POST, OPTIONS")
        #expect(headers["Access-Control-Allow-Headers"]?.contains("Authorization") == true)
        let refused = try server.request(
            "OPTIONS", "/api/events/publish",
            headers: [("Origin", Self.other), ("Access-Control-Request-Method", "POST")])
        #expect(Self.headers(refused)["Access-Control-Allow-Origin"] == nil)
        try await server.stop()
    }

    @Test func eventStreamHeadCarriesTheCORSHeadersOfItsRequest() async throws {
        let server = try await TestServer { $0.corsAllowedOrigins = [Self.app] }
        let client = try server.connect()
        let head = try client.openStream("/api/events?topic=cors", headers: [("Origin", Self.app)])
        let headers = Dictionary(head.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        #expect(head.status == 200)
        #expect(headers["Access-Control-Allow-Origin"] == Self.app)
        #expect(headers["Access-Control-Allow-Credentials"] == "true")
        try await server.stop()
    }

    @Test func webSocketFromAnUnlistedOriginIsRefusedAndOthersAreUpgraded() async throws {
        let server = try await TestServer { $0.corsAllowedOrigins = [Self.app] }
        let refused = try server.connect()
        try refused.send(
            "GET /api/ws HTTP/1.1\r\nHost: x\r\nOrigin: \(Self.other)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: \(RawConnection.sampleKey)\r\n\r\n")
        let response = try refused.readResponse()
        #expect(response.status == 403)
        #expect(response.errorCode == "forbidden_origin")
        try refused.waitForClose()
        #expect(try server.connect().upgrade(extraHeaders: [("Origin", Self.app)]).status == 101)
        #expect(try server.connect().upgrade().status == 101, "a client that sends no Origin is not a browser")
        try await server.stop()
    }
}
