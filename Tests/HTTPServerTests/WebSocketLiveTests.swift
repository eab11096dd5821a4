import EventBroker
import Foundation
import HTTPServer
import Testing

/// Python's `websockets` library, an independent client, against a real server on 127.0.0.1: each test runs one
/// scenario of `Python/ws_scenarios.py`, which prints what it observed as one JSON line, and checks it exactly.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct WebSocketLiveTests {
    /// Starts a server, runs `python3 Python/ws_scenarios.py <scenario> <port>` against it, stops the server and
    /// returns the scenario's observations with every object's members sorted by key.
    static func observe(
        _ scenario: String, _ configure: (inout BrokerConfiguration) -> Void = { _ in }
    ) async throws -> JSONValue {
        let server = try await TestServer(configure)
        let result = Result { try Self.run(scenario, port: server.port) }
        try await server.stop()
        return try result.get()
    }

    private static func run(_ scenario: String, port: Int) throws -> JSONValue {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Python/ws_scenarios.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, scenario, String(port)]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        try #require(process.terminationStatus == 0, "\(scenario) failed: \(text)\(errorText)")
        return Self.sorted(try JSONParser.parse(Array(text.utf8)))
    }

    /// `value` with every object's members sorted by key, so a comparison ignores member order.
    static func sorted(_ value: JSONValue) -> JSONValue {
        switch value {
        case .array(let elements): return .array(elements.map(Self.sorted))
        case .object(let members):
            return .object(members.map { ($0.key, Self.sorted($0.value)) }.sorted { $0.key < $1.key })
        default: return value
        }
    }

    /// The expected value: `json` parsed and sorted like the observations.
    static func json(_ json: String) throws -> JSONValue {
        Self.sorted(try JSONParser.parse(Array(json.utf8)))
    }

    /// An `event` message as the server sends it; `data` is JSON text.
    static func event(topic: String?, event: String? = nil, data: String, id: String) -> String {
        let topic = topic.map { #""topic":"\#($0)","# } ?? ""
        let event = event.map { #""event":"\#($0)","# } ?? ""
        return #"{"type":"event",\#(topic)\#(event)"data":\#(data),"id":"\#(id)"}"#
    }

    /// Checks a `connected` message: its topics, and a client id.
    static func expectConnected(
        _ message: JSONValue?, topics: [String], sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(message?["type"] == .string("connected"), sourceLocation: sourceLocation)
        #expect(message?["topics"] == .array(topics.map { .string($0) }), sourceLocation: sourceLocation)
        #expect(message?["clientId"]?.string?.isEmpty == false, "no clientId", sourceLocation: sourceLocation)
    }

    @Test func webSocketClientGetsAcksWithItsRefsAndEventsPublishedOverWebSocketAndREST() async throws {
        let observed = try await Self.observe("roundtrip")
        Self.expectConnected(observed["connected"], topics: [])
        #expect(observed["subscribe"] == (try Self.json(#"[{"type":"ack","ref":1,"topics":["rt/news"]}]"#)))

        let id = try #require(observed["webSocketPublish"]?.elements?.first?["id"]?.string)
        let created = Self.event(topic: "rt/news", event: "created", data: #"{"n":1}"#, id: id)
        #expect(
            observed["webSocketPublish"] == (try Self.json(#"[{"type":"ack","ref":"p-1","id":"\#(id)"},\#(created)]"#)))

        let restID = try #require(observed["restId"]?.string)
        #expect(try #require(UInt64(restID)) > (try #require(UInt64(id))))
        let hello = Self.event(topic: "rt/news", data: #""hello""#, id: restID)
        #expect(observed["restPublish"] == (try Self.json("[\(hello)]")))

        #expect(observed["ping"] == (try Self.json(#"[{"type":"pong","ref":{"k":[1,"x"]}}]"#)))
        #expect(observed["controlPingAnswered"] == .bool(true))
    }

    @Test func resumeReplaysExactlyTheEventsAfterTheGivenIDAndAnUnknownIDGetsAGapNoticeFirst() async throws {
        let observed = try await Self.observe("resume")
        let ids = try #require(observed["published"]?.strings)
        try #require(ids.count == 5)
        let live = try #require(observed["live"]?.string)
        let events = (ids + [live]).enumerated().map { index, id in
            Self.event(topic: "resume/t", data: "\(index + 1)", id: id)
        }

        let byURL = try #require(observed["byURL"]?.elements)
        Self.expectConnected(byURL.first, topics: ["resume/t"])
        #expect(Array(byURL.dropFirst()) == (try Self.json("[\(events[2...].joined(separator: ","))]")).elements)

        let byMessage = try #require(observed["byMessage"]?.elements)
        Self.expectConnected(byMessage.first, topics: [])
        let ack = #"{"type":"ack","ref":"r","topics":["resume/t"]}"#
        #expect(
            Array(byMessage.dropFirst())
                == (try Self.json("[\(ack),\(events[4...].joined(separator: ","))]")).elements)

        let unknown = try #require(observed["unknownID"]?.string)
        let fromUnknown = try #require(observed["fromUnknownID"]?.elements)
        Self.expectConnected(fromUnknown.first, topics: ["resume/t"])
        let gap = #"{"type":"event","event":"gap","data":{"lastEventId":"\#(unknown)","oldestAvailable":"\#(ids[0])"}}"#
        #expect(
            Array(fromUnknown.dropFirst()) == (try Self.json("[\(gap),\(events.joined(separator: ","))]")).elements)
    }

    @Test func sseAndWebSocketSubscribersSeeTheSameIDsInPublishOrderWhicheverTransportPublished() async throws {
        let observed = try await Self.observe("mixed")
        let published = try #require(observed["published"]?.strings)
        #expect(published.count == 20)
        let numbers = published.compactMap { UInt64($0) }
        #expect(numbers.count == 20 && zip(numbers, numbers.dropFirst()).allSatisfy { $0 < $1 }, "\(published)")
        let ids = JSONValue.array(published.map { .string($0) })
        #expect(observed["sseIds"] == ids)
        #expect(observed["wsIds"] == ids)
        let data = JSONValue.array((0..<20).map { .string(#"{"n":\#($0)}"#) })
        #expect(observed["sseData"] == data)
        #expect(observed["wsData"] == data)
    }

    @Test func directMessageToTheConnectionsClientIDAndBroadcastReachTheWebSocket() async throws {
        let observed = try await Self.observe("direct")
        Self.expectConnected(observed["connected"], topics: [])

        let messageID = try #require(observed["messageAnswer"]?["id"]?.string)
        #expect(observed["messageAnswer"]?["subscribers"] == .number("1"))
        let message = Self.event(topic: nil, event: "note", data: #"{"hello":"you"}"#, id: messageID)
        #expect(observed["message"] == (try Self.json("[\(message)]")))

        let broadcastID = try #require(observed["broadcastAnswer"]?["id"]?.string)
        let broadcast = Self.event(topic: "$broadcast", data: #""everyone""#, id: broadcastID)
        #expect(observed["broadcast"] == (try Self.json("[\(broadcast)]")))
    }

    @Test func badMessagesGetErrorsWithTheirCodeAndRefAndTheConnectionStaysOpen() async throws {
        let observed = try await Self.observe("bad_json")
        let expectations: [(String, code: String, ref: JSONValue?)] = [
            ("notJSON", "invalid_json", nil),
            ("notAnObject", "invalid_json", nil),
            ("unknownType", "unknown_type", .number("7")),
            ("publishWithoutTopic", "missing_field", .string("no-topic")),
        ]
        for (name, code, ref) in expectations {
            let replies = try #require(observed[name]?.elements, "\(name)")
            #expect(replies.count == 1, "\(name): \(replies)")
            #expect(replies.first?["type"] == .string("error"), "\(name)")
            #expect(replies.first?["code"] == .string(code), "\(name)")
            #expect(replies.first?["ref"] == ref, "\(name)")
            #expect(replies.first?["message"]?.string?.isEmpty == false, "\(name): no message")
        }
        #expect(observed["pingAfterwards"] == (try Self.json(#"[{"type":"pong","ref":8}]"#)))
    }

    @Test func textMessageThatIsNotUTF8ClosesWith1007AfterValidUTF8Passed() async throws {
        let observed = try await Self.observe("invalid_utf8")
        #expect(observed["validUTF8"] == (try Self.json(#"[{"type":"pong","ref":"żółw ✓"}]"#)))
        #expect(observed["splitAcrossFragments"] == (try Self.json(#"[{"type":"pong","ref":"żółw ✓"}]"#)))
        for name in ["invalidByte", "encodedSurrogate"] {
            #expect(observed[name]?["code"] == .number("1007"), "\(name): \(String(describing: observed[name]))")
            #expect(observed[name]?["received"] == .array([]), "\(name)")
        }
    }

    @Test func messageOverTheLimitClosesWith1009EvenWhenEachFragmentIsUnderIt() async throws {
        let observed = try await Self.observe("too_big") { $0.maxWebSocketMessageBytes = 4096 }
        #expect(observed["atLimit"] == (try Self.json(#"[{"type":"pong","refBytes":4072}]"#)))
        #expect(observed["overLimit"]?["code"] == .number("1009"), "\(String(describing: observed["overLimit"]))")
        #expect(observed["overLimit"]?["received"] == .array([]))

        #expect(observed["smallFragments"] == (try Self.json(#"[{"type":"pong","ref":"fragments"}]"#)))
        #expect(observed["fragmentsAtLimit"] == (try Self.json(#"[{"type":"pong","refBytes":4072}]"#)))
        #expect(observed["fragmentBytes"] == .array([.number("2548"), .number("2548")]))
        let fragments = observed["fragmentsOverLimit"]
        #expect(fragments?["code"] == .number("1009"), "\(String(describing: fragments))")
        #expect(fragments?["received"] == .array([]))
    }

    @Test func permessageDeflateIsAgreedWithWebsocketsAndALargeMessageRoundTripsIntact() async throws {
        let observed = try await Self.observe("compression")
        #expect(
            observed["agreed"]
                == .string("permessage-deflate; server_no_context_takeover; client_max_window_bits=15"))
        #expect(observed["plainAgreed"] == .null)
        #expect(observed["ack"] == .string("z"))
        #expect(observed["intact"] == .bool(true))
        #expect(observed["plainIntact"] == .bool(true))
    }

    @Test func unsubscribedTopicStopsDeliveringWhileTheOtherKeepsDelivering() async throws {
        let observed = try await Self.observe("unsubscribe")
        #expect(observed["subscribe"] == (try Self.json(#"[{"type":"ack","ref":1,"topics":["unsub/a","unsub/b"]}]"#)))
        #expect(observed["unsubscribe"] == (try Self.json(#"[{"type":"ack","ref":2,"topics":["unsub/a"]}]"#)))
        let published = try #require(observed["published"]?.strings)
        try #require(published.count == 3)
        let a = Self.event(topic: "unsub/a", data: #""a""#, id: published[1])
        let last = Self.event(topic: "unsub/a", data: #""last""#, id: published[2])
        #expect(observed["received"] == (try Self.json("[\(a),\(last)]")))
    }
}

extension JSONValue {
    fileprivate var string: String? {
        guard case .string(let value) = self else { return nil }
        return value
    }

    fileprivate var elements: [JSONValue]? {
        guard case .array(let elements) = self else { return nil }
        return elements
    }

    /// The elements of an array of strings; nil for anything else.
    fileprivate var strings: [String]? {
        guard let elements = self.elements else { return nil }
        let strings = elements.compactMap(\.string)
        return strings.count == elements.count ? strings : nil
    }
}
