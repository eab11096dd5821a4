import BrokerJWT
import EventBroker
import Foundation
import Testing

@testable import HTTPServer

/// Authorization over real sockets: every bad token on every endpoint, every forbidden topic, private events on
/// every way out (SSE, WebSocket, history, long poll, replay), tokens expiring under live streams, and the publish
/// rate per token.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct SecurityTests {
    static let audience = "eventbroker-tests"

    /// A server verifying HS256 with the suite's secret and RS256 with its RSA public key, for `audience`.
    static func server(
        anonymousSubscribers: Bool = false, publicKeyOnly: Bool = false, leeway: Duration = .seconds(5),
        _ configure: @escaping (inout BrokerConfiguration) -> Void = { _ in }
    ) async throws -> TestServer {
        let verifier = try await TokenVerifier(
            configuration: TokenVerifierConfiguration(
                hmacSecret: publicKeyOnly ? nil : SecurityTokens.secret, publicKeyPEM: SecurityTokens.rsaPublicKeyPEM,
                audience: Self.audience, clockSkewLeeway: leeway))
        return try await TestServer {
            $0.tokenVerifier = verifier
            $0.allowsAnonymousSubscribers = anonymousSubscribers
            configure(&$0)
        }
    }

    /// A valid token for this suite's server.
    static func token(
        publish: [String] = [], subscribe: [String] = [], subject: String = "tester", expiresIn: Int = 3600
    ) throws -> String {
        try SecurityTokens.hs256(
            publish: publish, subscribe: subscribe, subject: subject, expiresIn: expiresIn,
            extra: #""aud":"\#(Self.audience)""#)
    }

    // MARK: Bad tokens

    /// Where a request carries its token.
    enum Placement: Sendable {
        case bearer
        case query
        case cookie
        /// The whole `Authorization` header value, as given.
        case authorization
    }

    struct BadToken: CustomTestStringConvertible, Sendable {
        let name: String
        /// nil: no token at all.
        let token: String?
        var placement = Placement.bearer
        let code: String

        var testDescription: String { self.name }
    }

    static func badTokens() throws -> [BadToken] {
        let aud = #""aud":"\#(Self.audience)""#
        let claims = SecurityTokens.claims(publish: ["**"], subscribe: ["**"], extra: aud)
        let hs256 = #"{"alg":"HS256","typ":"JWT"}"#
        let valid = try Self.token(publish: ["**"], subscribe: ["**"])
        let parts = valid.split(separator: ".").map(String.init)
        let widened = SecurityTokens.base64URL(
            Data(SecurityTokens.claims(publish: ["**"], subscribe: ["**"], subject: "admin", extra: aud).utf8))
        return [
            BadToken(name: "no token", token: nil, code: "missing_token"),
            BadToken(name: "not a JWT", token: "not-a-jwt", code: "malformed_token"),
            BadToken(name: "two parts", token: parts[0] + "." + parts[1], code: "malformed_token"),
            BadToken(
                name: "header not JSON", token: "bm90IGpzb24." + parts[1] + "." + parts[2], code: "malformed_token"),
            BadToken(
                name: "alg none, unsigned",
                token: try SecurityTokens.token(header: #"{"alg":"none"}"#, payload: claims, signer: .none),
                code: "unsecured_token"),
            BadToken(
                name: "alg None, signed",
                token: try SecurityTokens.token(
                    header: #"{"alg":"None"}"#, payload: claims, signer: .hmac(SecurityTokens.secret)),
                code: "unsecured_token"),
            BadToken(
                name: "HS256 with another secret",
                token: try SecurityTokens.token(
                    header: hs256, payload: claims, signer: .hmac(SecurityTokens.otherSecret)),
                code: "invalid_signature"),
            BadToken(
                name: "HS256 keyed with the RSA public key (algorithm confusion)",
                token: try SecurityTokens.token(
                    header: hs256, payload: claims, signer: .hmac(SecurityTokens.rsaPublicKeyPEM)),
                code: "invalid_signature"),
            BadToken(
                name: "RS256 with another RSA key",
                token: try SecurityTokens.token(
                    header: #"{"alg":"RS256"}"#, payload: claims, signer: .rsa(SecurityTokens.otherRSAKey)),
                code: "invalid_signature"),
            BadToken(
                name: "ES256, not configured",
                token: try SecurityTokens.token(
                    header: #"{"alg":"ES256"}"#, payload: claims, signer: .hmac(SecurityTokens.secret)),
                code: "algorithm_not_allowed"),
            BadToken(
                name: "payload swapped after signing", token: parts[0] + "." + widened + "." + parts[2],
                code: "invalid_signature"),
            BadToken(name: "signature cut off", token: parts[0] + "." + parts[1] + ".", code: "invalid_signature"),
            BadToken(
                name: "expired a minute ago",
                token: try SecurityTokens.hs256(publish: ["**"], subscribe: ["**"], expiresIn: -60, extra: aud),
                code: "token_expired"),
            BadToken(
                name: "not valid for another minute",
                token: try SecurityTokens.hs256(
                    publish: ["**"], subscribe: ["**"],
                    extra: aud + #","nbf":\#(Int(Date().timeIntervalSince1970) + 60)"#),
                code: "token_not_yet_valid"),
            BadToken(
                name: "another audience",
                token: try SecurityTokens.hs256(publish: ["**"], subscribe: ["**"], extra: #""aud":"elsewhere""#),
                code: "wrong_audience"),
            BadToken(
                name: "no audience", token: try SecurityTokens.hs256(publish: ["**"], subscribe: ["**"]),
                code: "wrong_audience"),
            BadToken(
                name: "selector list is a string",
                token: try SecurityTokens.token(
                    header: hs256, payload: #"{"broker.publish":"news",\#(aud)}"#, signer: .hmac(SecurityTokens.secret)),
                code: "invalid_claim"),
            BadToken(
                name: "invalid selector",
                token: try SecurityTokens.hs256(publish: ["news//a"], extra: aud), code: "invalid_claim"),
            BadToken(
                name: "exp is a string",
                token: try SecurityTokens.token(
                    header: hs256, payload: #"{"exp":"soon",\#(aud)}"#, signer: .hmac(SecurityTokens.secret)),
                code: "invalid_claim"),
            BadToken(
                name: "critical header extension",
                token: try SecurityTokens.token(
                    header: #"{"alg":"HS256","crit":["exp"]}"#, payload: claims, signer: .hmac(SecurityTokens.secret)),
                code: "malformed_token"),
            BadToken(
                name: "9000-byte token", token: String(repeating: "a", count: 9000), code: "malformed_token"),
            BadToken(
                name: "Basic scheme", token: "Basic dXNlcjpwYXNz", placement: .authorization, code: "malformed_token"),
            BadToken(
                name: "Bearer without a token", token: "Bearer ", placement: .authorization, code: "malformed_token"),
            BadToken(name: "empty access_token parameter", token: "", placement: .query, code: "malformed_token"),
            BadToken(
                name: "expired, as access_token parameter",
                token: try SecurityTokens.hs256(publish: ["**"], subscribe: ["**"], expiresIn: -60, extra: aud),
                placement: .query, code: "token_expired"),
            BadToken(
                name: "forged, as cookie",
                token: try SecurityTokens.token(
                    header: hs256, payload: claims, signer: .hmac(SecurityTokens.otherSecret)),
                placement: .cookie, code: "invalid_signature"),
        ]
    }

    /// `target` and headers carrying `token` as `placement` says.
    static func request(
        _ target: String, token: String?, placement: Placement = .bearer
    ) -> (target: String, headers: [(String, String)]) {
        guard let token else { return (target, []) }
        switch placement {
        case .bearer: return (target, [("Authorization", "Bearer \(token)")])
        case .authorization: return (target, [("Authorization", token)])
        case .cookie: return (target, [("Cookie", "theme=dark; access_token=\(token)")])
        case .query:
            let separator = target.contains("?") ? "&" : "?"
            let encoded = token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token
            return (target + separator + "access_token=" + encoded, [])
        }
    }

    @Test func everyBadTokenIsRefusedWith401OnEveryEndpoint() async throws {
        let server = try await Self.server()
        let json = [("Content-Type", "application/json")]
        for bad in try Self.badTokens() {
            let publish = Self.request("/api/events/publish", token: bad.token, placement: bad.placement)
            let stream = Self.request("/api/events?topic=news", token: bad.token, placement: bad.placement)
            let history = Self.request("/api/events/history?topic=news", token: bad.token, placement: bad.placement)
            let topics = Self.request("/api/topics", token: bad.token, placement: bad.placement)
            let broadcast = Self.request("/api/messages/broadcast", token: bad.token, placement: bad.placement)
            let answers: [(String, RawConnection.Response)] = [
                (
                    "publish",
                    try server.connect().request(
                        "POST", publish.target, headers: publish.headers + json,
                        body: Array(#"{"topic":"news","data":"x"}"#.utf8))
                ),
                ("stream", try server.connect().request("GET", stream.target, headers: stream.headers)),
                ("history", try server.connect().request("GET", history.target, headers: history.headers)),
                ("topics", try server.connect().request("GET", topics.target, headers: topics.headers)),
                (
                    "broadcast",
                    try server.connect().request(
                        "POST", broadcast.target, headers: broadcast.headers + json, body: Array(#"{"data":"x"}"#.utf8))
                ),
            ]
            for (endpoint, response) in answers {
                #expect(response.status == 401, "\(bad.name) on \(endpoint): \(response.text)")
                #expect(response.errorCode == bad.code, "\(bad.name) on \(endpoint): \(response.text)")
                #expect(response.header("WWW-Authenticate")?.hasPrefix("Bearer realm=\"eventbroker\"") == true)
            }
            let webSocket = Self.request("/api/ws", token: bad.token, placement: bad.placement)
            let socket = try server.connect()
            let upgrade = try socket.upgrade(webSocket.target, extraHeaders: webSocket.headers)
            #expect(upgrade.status == 401, "\(bad.name) on the WebSocket handshake")
        }
        // Nothing got through, and the refusals were counted.
        #expect(server.broker.topics().isEmpty)
        let metrics = try server.request("GET", "/metrics").text
        #expect(metrics.contains(#"reason="unauthorized""#))
        try await server.stop()
    }

    @Test func badTokenTableIsLarge() throws {
        #expect(try Self.badTokens().count >= 25)
    }

    @Test func hmacTokenIsRefusedByAServerWithOnlyAPublicKey() async throws {
        let server = try await Self.server(publicKeyOnly: true)
        let confused = try SecurityTokens.token(
            header: #"{"alg":"HS256"}"#,
            payload: SecurityTokens.claims(publish: ["**"], extra: #""aud":"\#(Self.audience)""#),
            signer: .hmac(SecurityTokens.rsaPublicKeyPEM))
        let refused = try server.request(
            "POST", "/api/events/publish?topic=news", headers: [("Authorization", "Bearer \(confused)")], body: "x")
        #expect(refused.status == 401)
        #expect(refused.errorCode == "algorithm_not_allowed")
        let signed = try SecurityTokens.token(
            header: #"{"alg":"RS256"}"#,
            payload: SecurityTokens.claims(publish: ["news"], extra: #""aud":"\#(Self.audience)""#),
            signer: .rsa(SecurityTokens.rsaKey))
        let accepted = try server.request(
            "POST", "/api/events/publish?topic=news", headers: [("Authorization", "Bearer \(signed)")], body: "x")
        #expect(accepted.status == 200, "\(accepted.text)")
        try await server.stop()
    }

    // MARK: Forbidden topics

    struct Forbidden: CustomTestStringConvertible, Sendable {
        let name: String
        let method: String
        let target: String
        var body = ""
        var status = 403
        var code = "forbidden"

        var testDescription: String { self.name }
    }

    /// What a token granting `publish: news/*` and `subscribe: news/**, $presence/news` may and may not do.
    static let forbidden: [Forbidden] = [
        Forbidden(
            name: "publish outside", method: "POST", target: "/api/events/publish",
            body: #"{"topic":"sport/1","data":"x"}"#),
        Forbidden(
            name: "publish to one topic in and one outside", method: "POST", target: "/api/events/publish",
            body: #"{"topics":["news/a","sport/1"],"data":"x"}"#),
        Forbidden(
            name: "publish one segment deeper than news/*", method: "POST", target: "/api/events/publish",
            body: #"{"topic":"news/a/b","data":"x"}"#),
        Forbidden(
            name: "publish to a reserved topic", method: "POST", target: "/api/events/publish",
            body: #"{"topic":"$presence/news","data":"x"}"#),
        Forbidden(name: "broadcast", method: "POST", target: "/api/messages/broadcast", body: #"{"data":"x"}"#),
        Forbidden(name: "direct message", method: "POST", target: "/api/message", body: #"{"to":"c1","data":"x"}"#),
        Forbidden(name: "stream outside", method: "GET", target: "/api/events?topic=sport"),
        Forbidden(name: "stream of everything", method: "GET", target: "/api/events?topic=**"),
        Forbidden(name: "stream wider than granted", method: "GET", target: "/api/events?topic=*/a"),
        Forbidden(name: "stream with one selector outside", method: "GET", target: "/api/events?topic=news/a,sport"),
        Forbidden(name: "history outside", method: "GET", target: "/api/events/history?topic=sport"),
        Forbidden(name: "long poll outside", method: "GET", target: "/api/events/history?topic=sport&wait=5"),
        Forbidden(name: "topic details outside", method: "GET", target: "/api/topics/sport"),
        Forbidden(
            name: "allowed: publish", method: "POST", target: "/api/events/publish",
            body: #"{"topic":"news/a","data":"x"}"#, status: 200, code: ""),
        Forbidden(
            name: "allowed: history", method: "GET", target: "/api/events/history?topic=news/*", status: 200, code: ""),
        Forbidden(name: "allowed: topic details", method: "GET", target: "/api/topics/news/a", status: 200, code: ""),
    ]

    @Test func topicsOutsideTheTokenAreForbiddenWith403() async throws {
        let server = try await Self.server()
        let token = try Self.token(publish: ["news/*"], subscribe: ["news/**", "$presence/news"])
        let auth = [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")]
        for row in Self.forbidden {
            let response = try server.connect().request(
                row.method, row.target, headers: auth, body: Array(row.body.utf8))
            #expect(response.status == row.status, "\(row.name): \(response.text)")
            if row.status == 403 {
                #expect(response.errorCode == row.code, "\(row.name): \(response.text)")
                #expect(response.header("WWW-Authenticate")?.contains("insufficient_scope") == true)
            }
        }
        let socket = try server.connect()
        #expect(try socket.upgrade("/api/ws?topic=sport", extraHeaders: [auth[0]]).status == 403)
        // Topics the token cannot read are left out of the list.
        let admin = try Self.token(publish: ["**"])
        _ = try server.publish(#"{"topic":"sport/1","data":"x"}"#, headers: [("Authorization", "Bearer \(admin)")])
        let topics = try server.request("GET", "/api/topics", headers: [auth[0]]).text
        #expect(topics.contains(#""topic":"news/a""#))
        #expect(!topics.contains("sport"))
        #expect(try server.request("GET", "/metrics").text.contains(#"reason="forbidden""#))
        try await server.stop()
    }

    @Test func broadcastAndDirectMessagesNeedTheirReservedGrants() async throws {
        let server = try await Self.server()
        let token = try Self.token(publish: ["$broadcast", "$direct"], subscribe: ["news"], subject: "alice")
        let auth = [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")]
        let stream = try server.connect()
        #expect(try stream.openStream("/api/events?topic=news", headers: [auth[0]]).status == 200)
        _ = try stream.readMessages(count: 1)
        let broadcast = try server.connect().request(
            "POST", "/api/messages/broadcast", headers: auth, body: Array(#"{"data":"all"}"#.utf8))
        #expect(broadcast.status == 200, "\(broadcast.text)")
        // The stream's token says sub alice: a direct message to that user reaches it.
        let direct = try server.connect().request(
            "POST", "/api/message", headers: auth, body: Array(#"{"user":"alice","data":"psst"}"#.utf8))
        #expect(direct.status == 200, "\(direct.text)")
        let messages = try stream.readMessages(count: 2)
        #expect(messages.map(\.data) == ["all", "psst"])
        let publish = try server.connect().request(
            "POST", "/api/events/publish", headers: auth, body: Array(#"{"topic":"news","data":"x"}"#.utf8))
        #expect(publish.status == 403)
        try await server.stop()
    }

    @Test func webSocketMessagesOutsideTheTokenGetForbiddenErrors() async throws {
        let server = try await Self.server()
        let token = try Self.token(publish: ["news/*"], subscribe: ["news/**"])
        let socket = try server.connect()
        #expect(try socket.upgrade("/api/ws?access_token=\(token)").status == 101)
        _ = try socket.readMessage(type: "connected")
        try socket.sendText(#"{"type":"subscribe","topics":["sport"],"ref":1}"#)
        let subscribe = try socket.readMessage(type: "error")
        #expect(subscribe["code"] == .string("forbidden"))
        #expect(subscribe["ref"] == .number("1"))
        try socket.sendText(#"{"type":"publish","topic":"sport","data":"x","ref":2}"#)
        let publish = try socket.readMessage(type: "error")
        #expect(publish["code"] == .string("forbidden"))
        #expect(publish["ref"] == .number("2"))
        try socket.sendText(#"{"type":"subscribe","topics":["news/**"],"ref":3}"#)
        #expect(try socket.readMessage(type: "ack")["ref"] == .number("3"))
        try socket.sendText(#"{"type":"publish","topic":"news/a","data":"x","ref":4}"#)
        #expect(try socket.readMessage(type: "ack")["ref"] == .number("4"))
        let event = try socket.readMessage(type: "event")
        #expect(event["topic"] == .string("news/a"))
        try await server.stop()
    }

    @Test func anonymousClientsMayNotPublishOrSubscribeUnlessAllowed() async throws {
        let closed = try await Self.server()
        let stream = try closed.request("GET", "/api/events?topic=news")
        #expect(stream.status == 401)
        #expect(stream.errorCode == "missing_token")
        #expect(try closed.connect().upgrade("/api/ws").status == 401)
        try await closed.stop()

        let open = try await Self.server(anonymousSubscribers: true)
        let subscriber = try open.connect()
        #expect(try subscriber.openStream("/api/events?topic=news").status == 200)
        let publish = try open.request(
            "POST", "/api/events/publish", headers: [("Content-Type", "application/json")],
            body: #"{"topic":"news","data":"x"}"#)
        #expect(publish.status == 401)
        #expect(publish.errorCode == "missing_token")
        let socket = try open.connect()
        #expect(try socket.upgrade("/api/ws").status == 101)
        _ = try socket.readMessage(type: "connected")
        try socket.sendText(#"{"type":"publish","topic":"news","data":"x","ref":1}"#)
        #expect(try socket.readMessage(type: "error")["code"] == .string("missing_token"))
        try await open.stop()
    }

    // MARK: Private events

    @Test func privateEventsReachOnlyTokensThatCoverTheirTopic() async throws {
        let server = try await Self.server(anonymousSubscribers: true)
        let publisher = try Self.token(publish: ["news/*"])
        let reader = try Self.token(subscribe: ["news/**"])
        let publishAuth = [("Authorization", "Bearer \(publisher)")]

        let anonymousSSE = try server.connect()
        #expect(try anonymousSSE.openStream("/api/events?topic=news/*").status == 200)
        let readerSSE = try server.connect()
        #expect(try readerSSE.openStream("/api/events?topic=news/*&access_token=\(reader)").status == 200)
        let anonymousWS = try server.connect()
        #expect(try anonymousWS.upgrade("/api/ws?topic=news/*").status == 101)
        let readerWS = try server.connect()
        #expect(
            try readerWS.upgrade("/api/ws?topic=news/*", extraHeaders: [("Cookie", "access_token=\(reader)")]).status
                == 101)
        for stream in [anonymousSSE, readerSSE] { _ = try stream.readMessages(count: 1) }
        for socket in [anonymousWS, readerWS] { _ = try socket.readMessage(type: "connected") }

        let first = try server.publish(#"{"topic":"news/a","data":"public 1"}"#, headers: publishAuth)
        let secret = try server.publish(#"{"topic":"news/a","data":"secret","private":true}"#, headers: publishAuth)
        let last = try server.publish(#"{"topic":"news/b","data":"public 2"}"#, headers: publishAuth)

        #expect(try anonymousSSE.readMessages(count: 2).map(\.id) == [first, last])
        #expect(try readerSSE.readMessages(count: 3).map(\.id) == [first, secret, last])
        #expect(
            try (0..<2).map { _ in try anonymousWS.readMessage(type: "event")["id"] } == [
                .string(first), .string(last),
            ])
        #expect(
            try (0..<3).map { _ in try readerWS.readMessage(type: "event")["id"] }
                == [.string(first), .string(secret), .string(last)])

        // History and replay hold the private event for the reader only.
        let anonymousHistory = try server.request("GET", "/api/events/history?topic=news/*").json()
        #expect(Self.ids(anonymousHistory) == [first, last])
        let readerHistory = try server.request(
            "GET", "/api/events/history?topic=news/*", headers: [("Authorization", "Bearer \(reader)")]
        ).json()
        #expect(Self.ids(readerHistory) == [first, secret, last])
        let anonymousReplay = try server.connect()
        #expect(
            try anonymousReplay.openStream("/api/events?topic=news/*", headers: [("Last-Event-ID", "0")]).status == 200)
        #expect(try anonymousReplay.readMessages(count: 3).compactMap(\.id) == [first, last])
        let readerReplay = try server.connect()
        #expect(
            try readerReplay.openStream(
                "/api/events?topic=news/*&lastEventId=0", headers: [("Authorization", "Bearer \(reader)")]
            ).status == 200)
        #expect(try readerReplay.readMessages(count: 4).compactMap(\.id) == [first, secret, last])
        let wsReplay = try server.connect()
        try wsReplay.upgrade("/api/ws")
        _ = try wsReplay.readMessage(type: "connected")
        try wsReplay.sendText(#"{"type":"subscribe","topics":["news/*"],"lastEventId":"0"}"#)
        #expect(
            try (0..<2).map { _ in try wsReplay.readMessage(type: "event")["id"] } == [.string(first), .string(last)])

        // A long poll is not answered by a private event it may not read, and answers the next public one alone.
        let poll = try server.connect()
        try poll.send("GET /api/events/history?topic=news/*&after=\(last)&wait=5 HTTP/1.1\r\nHost: x\r\n\r\n")
        try await Task.sleep(for: .milliseconds(200))
        let hidden = try server.publish(#"{"topic":"news/a","data":"secret 2","private":true}"#, headers: publishAuth)
        try await Task.sleep(for: .milliseconds(200))
        let shown = try server.publish(#"{"topic":"news/a","data":"public 3"}"#, headers: publishAuth)
        let answer = try poll.readResponse().json()
        #expect(Self.ids(answer) == [shown])
        #expect(hidden != shown)
        try await server.stop()
    }

    @Test func curlAndPythonWebSocketsCarryTokensTheWayClientsDo() async throws {
        let server = try await Self.server(anonymousSubscribers: true)
        let base = "http://127.0.0.1:\(server.port)"
        let publisher = try Self.token(publish: ["news"])
        let reader = try Self.token(subscribe: ["news"])
        let publish = try ExternalCommand.run(
            "/usr/bin/env",
            [
                "curl", "-sS", "--max-time", "5", "-H", "Authorization: Bearer \(publisher)", "-H",
                "Content-Type: application/json", "-d", #"{"topic":"news","data":"for readers","private":true}"#,
                "\(base)/api/events/publish",
            ])
        let id = try #require(try? JSONParser.parse(Array(publish.output.utf8))["id"], "\(publish.output)")
        _ = try server.publish(
            #"{"topic":"news","data":"for all"}"#, headers: [("Authorization", "Bearer \(publisher)")])
        // curl -N with the token as a query parameter, as an EventSource would send it, and with a cookie.
        let tokenStream = try ExternalCommand.run(
            "/usr/bin/env",
            [
                "curl", "-sS", "-N", "--max-time", "2",
                "\(base)/api/events?topic=news&lastEventId=0&access_token=\(reader)",
            ])
        #expect(tokenStream.output.contains("data: for readers\n"), "\(tokenStream.output)")
        #expect(tokenStream.output.contains("data: for all\n"))
        let cookieHistory = try ExternalCommand.run(
            "/usr/bin/env",
            ["curl", "-sS", "--max-time", "5", "-b", "access_token=\(reader)", "\(base)/api/events/history?topic=news"])
        #expect(cookieHistory.output.contains("for readers"), "\(cookieHistory.output)")
        let anonymousStream = try ExternalCommand.run(
            "/usr/bin/env", ["curl", "-sS", "-N", "--max-time", "2", "\(base)/api/events?topic=news&lastEventId=0"])
        #expect(anonymousStream.output.contains("data: for all\n"), "\(anonymousStream.output)")
        #expect(!anonymousStream.output.contains("for readers"))
        // Python's websockets with an Authorization header, and without a token.
        let script = """
            import json, sys
            from websockets.sync.client import connect
            def replay(headers):
                url = f"ws://127.0.0.1:{sys.argv[1]}/api/ws"
                with connect(url, additional_headers=headers, open_timeout=5, close_timeout=2) as ws:
                    ws.recv(timeout=5)
                    ws.send(json.dumps({"type": "subscribe", "topics": ["news"], "lastEventId": "0"}))
                    seen = []
                    while True:
                        try:
                            message = json.loads(ws.recv(timeout=1))
                        except TimeoutError:
                            return seen
                        if message["type"] == "event":
                            seen.append(message["data"])
            print(json.dumps([replay({"Authorization": "Bearer " + sys.argv[2]}), replay({})]))
            """
        let python = try ExternalCommand.run("/usr/bin/env", ["python3", "-c", script, String(server.port), reader])
        try #require(python.status == 0, "\(python.output)\(python.errors)")
        #expect(python.output == #"[["for readers", "for all"], ["for all"]]"# + "\n")
        #expect(id != .null)
        try await server.stop()
    }

    @Test func withoutAKeyTheBrokerIsOpenAndPrivateEventsReachEveryone() async throws {
        let server = try await TestServer()
        let stream = try server.connect()
        #expect(try stream.openStream("/api/events?topic=news").status == 200)
        _ = try stream.readMessages(count: 1)
        let id = try server.publish(#"{"topic":"news","data":"x","private":true}"#)
        #expect(try stream.readMessages(count: 1).map(\.id) == [id])
        try await server.stop()
    }

    static func ids(_ page: JSONValue) -> [String] {
        guard case .array(let events)? = page["events"] else { return [] }
        return events.compactMap { event -> String? in
            guard case .string(let id)? = event["id"] else { return nil }
            return id
        }
    }

    // MARK: Expiry

    @Test func streamsEndWhenTheirTokenExpiresAndResumeWithAFreshOne() async throws {
        // Without leeway, so that the stream ends at `exp` (it ends at `exp` plus the leeway, when tokens stop being
        // accepted).
        let server = try await Self.server(leeway: .zero)
        let publisher = [("Authorization", "Bearer \(try Self.token(publish: ["news"]))")]
        let shortLived = try Self.token(subscribe: ["news"], expiresIn: 2)
        let stream = try server.connect()
        #expect(try stream.openStream("/api/events?topic=news&access_token=\(shortLived)").status == 200)
        _ = try stream.readMessages(count: 1)
        let seen = try server.publish(#"{"topic":"news","data":"before"}"#, headers: publisher)
        let socket = try server.connect()
        #expect(try socket.upgrade("/api/ws?topic=news&access_token=\(shortLived)").status == 101)
        _ = try socket.readMessage(type: "connected")

        // The stream ends with a token_expired frame; the WebSocket gets an error and a 1008 close.
        let started = ContinuousClock.now
        let end = try stream.readMessagesUntilEnd(timeout: .seconds(6))
        #expect(end.messages.compactMap(\.id) == [seen])
        #expect(end.messages.last?.event == "token_expired")
        #expect(ContinuousClock.now - started < .seconds(5))
        let expired = try socket.readMessage(type: "error", timeout: .seconds(6))
        #expect(expired["code"] == .string("token_expired"))
        #expect(try socket.readCloseCode() == 1008)

        // What was published meanwhile comes with the reconnection, after the last id seen.
        let missed = try server.publish(#"{"topic":"news","data":"meanwhile"}"#, headers: publisher)
        let fresh = try Self.token(subscribe: ["news"])
        let again = try server.connect()
        #expect(
            try again.openStream(
                "/api/events?topic=news", headers: [("Authorization", "Bearer \(fresh)"), ("Last-Event-ID", seen)]
            ).status == 200)
        #expect(try again.readMessages(count: 2).compactMap(\.id) == [missed])
        // The expired token is refused from now on.
        let refused = try server.request("GET", "/api/events?topic=news&access_token=\(shortLived)")
        #expect(refused.status == 401)
        #expect(refused.errorCode == "token_expired")
        try await server.stop()
    }

    // MARK: Limits

    @Test func publishRateIsCountedPerTokenSubject() async throws {
        let server = try await Self.server {
            $0.publishRate = 1
            $0.publishBurst = 2
        }
        let alice = [("Authorization", "Bearer \(try Self.token(publish: ["news"], subject: "alice"))")]
        let bob = [("Authorization", "Bearer \(try Self.token(publish: ["news"], subject: "bob"))")]
        var statuses: [Int] = []
        for headers in [alice, alice, alice, bob] {
            statuses.append(
                try server.request("POST", "/api/events/publish?topic=news", headers: headers, body: "x").status)
        }
        #expect(statuses == [200, 200, 429, 200])
        try await server.stop()
    }

    @Test func connectionFloodIsHeldToTheLimitAndTheServerStaysHealthy() async throws {
        let server = try await TestServer { $0.maxConnections = 50 }
        var flood: [RawConnection] = []
        for _ in 0..<200 { flood.append(try server.connect()) }
        var statuses: [Int: Int] = [:]
        for connection in flood {
            let status = try connection.request("GET", "/api/health").status
            statuses[status, default: 0] += 1
        }
        #expect(statuses[200] == 50, "\(statuses)")
        #expect(statuses[503] == 150, "\(statuses)")
        #expect(server.limitedConnections <= 50)
        for connection in flood { connection.shutdown() }
        flood.removeAll()
        #expect(try server.waitUntil { server.limitedConnections == 0 })
        #expect(try server.request("GET", "/api/health").status == 200)
        try await server.stop()
    }
}
