import EventBroker
import Foundation
import Testing

@testable import HTTPServer

/// Presence and ephemeral events over real sockets: `join` / `leave` on `$presence/<topic>` from SSE and WebSocket
/// subscribers with their display names, the member list of `GET /api/topics/{topic}`, and events that are delivered
/// live but never kept.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct PresenceTests {
    /// Opens an SSE stream and returns it with its `connected` data.
    static func stream(_ server: TestServer, _ target: String) throws -> (RawConnection, JSONValue) {
        let connection = try server.connect()
        let head = try connection.openStream(target)
        guard head.status == 200 else {
            throw RawConnection.TimedOut(description: "\(target) answered \(head.status)")
        }
        let connected = try #require(try connection.readMessages(count: 1).first)
        #expect(connected.event == "connected")
        return (connection, try JSONParser.parse(Array(connected.data.utf8)))
    }

    static func clientID(_ connected: JSONValue) throws -> String {
        guard case .string(let id)? = connected["clientId"] else {
            throw RawConnection.TimedOut(description: "no clientId in \(connected)")
        }
        return id
    }

    static func number(_ value: JSONValue?) -> Int? {
        guard case .number(let text)? = value else { return nil }
        return Int(text)
    }

    @Test func joinAndLeaveReachPresenceWatchersWithNameCountAndTime() async throws {
        let server = try await TestServer()
        let (watcher, _) = try Self.stream(server, "/api/events?topic=%24presence/lobby")
        let (everything, _) = try Self.stream(server, "/api/events?topic=%24presence/**")
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        let (alice, aliceConnected) = try Self.stream(
            server, "/api/events?topic=lobby&topic=news/*&name=Alice%20%3Cb%3E")
        #expect(aliceConnected["name"] == .string("Alice <b>"))
        let aliceID = try Self.clientID(aliceConnected)
        let (bob, bobConnected) = try Self.stream(server, "/api/events?topic=lobby&name=bob")
        let bobID = try Self.clientID(bobConnected)

        let joins = try watcher.readMessages(count: 2)
        #expect(joins.map(\.event) == ["join", "join"])
        let first = try JSONParser.parse(Array(joins[0].data.utf8))
        #expect(first["topic"] == .string("lobby"))
        #expect(first["clientId"] == .string(aliceID))
        #expect(first["name"] == .string("Alice <b>"))
        #expect(first["transport"] == .string("sse"))
        #expect(Self.number(first["members"]) == 1)
        let time = try #require(Self.number(first["time"]))
        #expect(UInt64(time) >= before && UInt64(time) <= before + 10_000)
        let second = try JSONParser.parse(Array(joins[1].data.utf8))
        #expect(second["clientId"] == .string(bobID))
        #expect(Self.number(second["members"]) == 2)
        let firstID = try #require(joins[0].id.flatMap { UInt64($0) })
        let secondID = try #require(joins[1].id.flatMap { UInt64($0) })
        #expect(secondID > firstID)
        // `$presence/**` sees the same events, with the same ids.
        #expect(try everything.readMessages(count: 2).map(\.id) == joins.map(\.id))

        alice.shutdown()
        let leave = try #require(try watcher.readMessages(count: 1).first)
        #expect(leave.event == "leave")
        let left = try JSONParser.parse(Array(leave.data.utf8))
        #expect(left["clientId"] == .string(aliceID))
        #expect(Self.number(left["members"]) == 1)
        #expect(try everything.readMessages(count: 1).first?.id == leave.id)
        _ = bob
        try await server.stop()
    }

    @Test func topicListsItsMembersButNotWildcardWatchersOrLongPolls() async throws {
        let server = try await TestServer()
        let kept = try server.publish(#"{"topic":"room/1","data":"kept"}"#)
        let (alice, aliceConnected) = try Self.stream(server, "/api/events?topic=room/1&name=alice")
        let (watcher, _) = try Self.stream(server, "/api/events?topic=room/*&name=watcher")
        let (anonymous, anonymousConnected) = try Self.stream(server, "/api/events?topic=room/1&topic=room/1")
        let poll = try server.connect()
        try poll.send("GET /api/events/history?topic=room/1&after=\(kept)&wait=5 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try server.waitUntil { try server.subscribersPerLoop().reduce(0, +) == 4 })

        let response = try server.request("GET", "/api/topics/room%2F1")
        #expect(response.status == 200)
        let json = try response.json()
        #expect(json["topic"] == .string("room/1"))
        #expect(Self.number(json["subscribers"]) == 4, "every selector matching counts, the long poll too")
        #expect(Self.number(json["memberCount"]) == 2)
        #expect(Self.number(json["historySize"]) == 1)
        guard case .array(let members)? = json["members"] else {
            Issue.record("no members in \(json)")
            return
        }
        #expect(members.map { $0["clientId"] } == [aliceConnected["clientId"], anonymousConnected["clientId"]])
        #expect(members.map { $0["name"] } == [.string("alice"), .null])
        #expect(members.map { $0["transport"] } == [.string("sse"), .string("sse")])
        #expect(members.allSatisfy { Self.number($0["since"]) != nil })
        guard case .string(let asOf)? = json["presenceAsOf"] else {
            Issue.record("no presenceAsOf in \(json)")
            return
        }
        #expect(UInt64(asOf) != nil)
        // The listing counts members too.
        let list = try server.request("GET", "/api/topics").json()
        guard case .array(let topics)? = list["topics"] else {
            Issue.record("no topics in \(list)")
            return
        }
        #expect(topics.first { $0["topic"] == .string("room/1") }.map { Self.number($0["memberCount"]) } == 2)

        alice.shutdown()
        withExtendedLifetime((watcher, anonymous, poll)) {}
        #expect(
            try server.waitUntil {
                Self.number(try server.request("GET", "/api/topics/room%2F1").json()["memberCount"]) == 1
            })
        try await server.stop()
    }

    @Test func presenceEventsAreNeverStoredOrReplayedAndCostNoIdWhenNobodyWatches() async throws {
        let server = try await TestServer()
        let a = try #require(UInt64(try server.publish(#"{"topic":"quiet","data":"a"}"#)))
        let (quiet, _) = try Self.stream(server, "/api/events?topic=quiet&name=nobody-watches")
        quiet.shutdown()
        let b = try #require(UInt64(try server.publish(#"{"topic":"quiet","data":"b"}"#)))
        #expect(b == a + 1, "no presence event was made for an unwatched topic")

        let (watcher, _) = try Self.stream(server, "/api/events?topic=%24presence/quiet")
        let (member, _) = try Self.stream(server, "/api/events?topic=quiet")
        let join = try #require(try watcher.readMessages(count: 1).first)
        #expect(join.event == "join")
        member.shutdown()
        #expect(try watcher.readMessages(count: 1).first?.event == "leave")

        let history = try server.request("GET", "/api/events/history?topic=%24presence/quiet").json()
        #expect(history["events"] == .array([]))
        let resumed = try server.connect()
        _ = try resumed.openStream("/api/events?topic=%24presence/quiet&lastEventId=0")
        _ = try resumed.readMessages(count: 1)
        // Nothing was replayed: the next thing on the stream is a live presence event, not an old one.
        let (late, _) = try Self.stream(server, "/api/events?topic=quiet&name=late")
        let next = try #require(try resumed.readMessages(count: 1).first)
        withExtendedLifetime(late) {}
        #expect(next.event == "join")
        #expect(try JSONParser.parse(Array(next.data.utf8))["name"] == .string("late"))
        try await server.stop()
    }

    @Test func webSocketSubscribeAndUnsubscribeJoinAndLeaveWithTheUpgradeName() async throws {
        let server = try await TestServer()
        let (watcher, _) = try Self.stream(server, "/api/events?topic=%24presence/**")
        let socket = try server.connect()
        #expect(try socket.upgrade("/api/ws?name=carol").status == 101)
        let connected = try socket.readMessage(type: "connected")
        #expect(connected["name"] == .string("carol"))
        try socket.sendText(#"{"type":"subscribe","topics":["a","b","c/*"],"ref":1}"#)
        _ = try socket.readMessage(type: "ack")
        try socket.sendText(#"{"type":"unsubscribe","topics":["a"],"ref":2}"#)
        _ = try socket.readMessage(type: "ack")
        let messages = try watcher.readMessages(count: 3)
        let changes = try messages.map { message -> String in
            let data = try JSONParser.parse(Array(message.data.utf8))
            #expect(data["name"] == .string("carol"))
            #expect(data["transport"] == .string("ws"))
            guard case .string(let topic)? = data["topic"] else { return "?" }
            return "\(message.event) \(topic)"
        }
        #expect(changes == ["join a", "join b", "leave a"])
        socket.shutdown()
        let last = try #require(try watcher.readMessages(count: 1).first)
        #expect(last.event == "leave")
        #expect(try JSONParser.parse(Array(last.data.utf8))["topic"] == .string("b"))
        try await server.stop()
    }

    @Test func aBadNameIsRefusedOnStreamsAndWebSockets() async throws {
        let server = try await TestServer()
        let long = String(repeating: "n", count: RESTAPI.maxNameBytes + 1)
        for name in ["", long, "a%0Ab", "tab%09", "%7F"] {
            let stream = try server.request("GET", "/api/events?topic=t&name=\(name)")
            #expect(stream.status == 400, "\(name)")
            #expect(try stream.json()["error"]?["code"] == .string("invalid_parameter"))
            let socket = try server.connect()
            #expect(try socket.upgrade("/api/ws?name=\(name)").status == 400, "\(name)")
        }
        // Sixty-four bytes of UTF-8, multi-byte characters included, are fine.
        let (_, connected) = try Self.stream(
            server, "/api/events?topic=t&name=" + String(repeating: "%C3%A9", count: 32))
        #expect(connected["name"] == .string(String(repeating: "é", count: 32)))
        try await server.stop()
    }

    @Test func theTokenSubjectNamesASubscriberThatGivesNoName() async throws {
        let server = try await SecurityTests.server()
        let token = try SecurityTests.token(subscribe: ["room", "$presence/room"], subject: "user-7")
        let (watcher, _) = try Self.stream(server, "/api/events?topic=%24presence/room&access_token=\(token)")
        let (member, connected) = try Self.stream(server, "/api/events?topic=room&access_token=\(token)")
        #expect(connected["name"] == .string("user-7"))
        let join = try #require(try watcher.readMessages(count: 1).first)
        #expect(try JSONParser.parse(Array(join.data.utf8))["name"] == .string("user-7"))
        // Members are listed to whoever may watch the topic's presence; a token without it sees the count only.
        let listed = try server.request("GET", "/api/topics/room", headers: [("Authorization", "Bearer \(token)")])
        #expect(try listed.json()["members"] != nil)
        let roomOnly = try SecurityTests.token(subscribe: ["room"])
        let counted = try server.request("GET", "/api/topics/room", headers: [("Authorization", "Bearer \(roomOnly)")])
        #expect(counted.status == 200)
        #expect(try counted.json()["members"] == nil)
        #expect(Self.number(try counted.json()["memberCount"]) == 1)
        // Watching presence needs the grant like any reserved topic.
        let refused = try server.request("GET", "/api/events?topic=%24presence/room&access_token=\(roomOnly)")
        #expect(refused.status == 403)
        withExtendedLifetime(member) {}
        try await server.stop()
    }

    // MARK: Ephemeral events

    @Test func ephemeralEventsAreDeliveredLiveButNeverKeptOrReplayed() async throws {
        let server = try await TestServer()
        let (live, _) = try Self.stream(server, "/api/events?topic=room")
        let kept = try server.publish(#"{"topic":"room","data":"kept"}"#)
        let typing = try server.publish(#"{"topic":"room","data":{"typing":true},"event":"typing","ephemeral":true}"#)
        let form = try server.request(
            "POST", "/api/events/publish", headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: "topic=room&data=form&ephemeral=true")
        #expect(form.status == 200)
        let raw = try server.request("POST", "/api/events/publish?topic=room&ephemeral=1", body: "raw")
        #expect(raw.status == 200)
        let messages = try live.readMessages(count: 4)
        #expect(messages.map(\.data) == ["kept", #"{"typing":true}"#, "form", "raw"])
        #expect(messages[1].id == typing)
        #expect(messages[1].event == "typing")

        let history = try server.request("GET", "/api/events/history?topic=room").json()
        guard case .array(let events)? = history["events"] else {
            Issue.record("no events in \(history)")
            return
        }
        #expect(events.map { $0["id"] } == [.string(kept)])
        #expect(Self.number(try server.request("GET", "/api/topics/room").json()["historySize"]) == 1)
        // A resume from before them replays the kept event only.
        let resumed = try server.connect()
        _ = try resumed.openStream("/api/events?topic=room&lastEventId=0")
        let replay = try resumed.readMessages(count: 2)
        #expect(replay.map(\.event) == ["connected", "message"])
        #expect(replay[1].data == "kept")
        let marker = try server.publish(#"{"topic":"room","data":"marker"}"#)
        #expect(try resumed.readMessages(count: 1).first?.id == marker)
        try await server.stop()
    }

    @Test func aDurableStoreKeepsNeitherEphemeralNorPresenceEventsAcrossARestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("broker-presence-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("events.db").path
        let server = try await TestServer(store: try SQLiteEventStore(path: path))
        let (watcher, _) = try Self.stream(server, "/api/events?topic=%24presence/room")
        let (member, _) = try Self.stream(server, "/api/events?topic=room&name=dana")
        let kept = try server.publish(#"{"topic":"room","data":"kept"}"#)
        let typing = try server.publish(#"{"topic":"room","data":"typing","ephemeral":true}"#)
        // Keyed ephemeral publishes are answered once, like any other.
        let keyed = try server.publish(
            #"{"topic":"room","data":"typing","ephemeral":true}"#, headers: [("Idempotency-Key", "typing-1")])
        let again = try server.publish(
            #"{"topic":"room","data":"typing","ephemeral":true}"#, headers: [("Idempotency-Key", "typing-1")])
        #expect(again == keyed)
        let live = try member.readMessages(count: 3)
        #expect(live.map(\.id) == [kept, typing, keyed])
        #expect(try watcher.readMessages(count: 1).first?.event == "join")
        try await server.stop()

        let restarted = try await TestServer(store: try SQLiteEventStore(path: path))
        let history = try restarted.request("GET", "/api/events/history?topic=room&topic=%24presence/room").json()
        guard case .array(let events)? = history["events"] else {
            Issue.record("no events in \(history)")
            return
        }
        #expect(events.map { $0["id"] } == [.string(kept)])
        let replayedKey = try restarted.publish(
            #"{"topic":"room","data":"typing","ephemeral":true}"#, headers: [("Idempotency-Key", "typing-1")])
        #expect(replayedKey == keyed, "the key outlives the restart")
        try await restarted.stop()
    }

    @Test func ephemeralMustBeABoolean() async throws {
        let server = try await TestServer()
        let response = try server.request(
            "POST", "/api/events/publish", headers: [("Content-Type", "application/json")],
            body: #"{"topic":"t","data":"x","ephemeral":"yes"}"#)
        #expect(response.status == 400)
        #expect(try response.json()["error"]?["code"] == .string("invalid_field"))
        try await server.stop()
    }

    @Test func webSocketPublishesEphemeralEvents() async throws {
        let server = try await TestServer()
        let (live, _) = try Self.stream(server, "/api/events?topic=room")
        let socket = try server.connect()
        #expect(try socket.upgrade("/api/ws").status == 101)
        _ = try socket.readMessage(type: "connected")
        try socket.sendText(#"{"type":"publish","topic":"room","data":"typing…","ephemeral":true,"ref":"t"}"#)
        let ack = try socket.readMessage(type: "ack")
        #expect(ack["ref"] == .string("t"))
        let message = try #require(try live.readMessages(count: 1).first)
        #expect(message.data == "typing…")
        #expect(message.id == ack["id"].flatMap { if case .string(let id) = $0 { id } else { nil } })
        let history = try server.request("GET", "/api/events/history?topic=room").json()
        #expect(history["events"] == .array([]))
        try await server.stop()
    }
}
