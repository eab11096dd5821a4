import BrokerClient
import EventBroker
import Foundation
import HTTPServer
import Testing

/// Real clients against a real server on 127.0.0.1: raw sockets that parse SSE as the WHATWG spec says, and curl.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct LiveStreamTests {
    @Test func streamStartsWithEventStreamHeadersRetryAndConnectedFrame() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        let head = try client.openStream("/api/events?topic=news&topic=chat/*")
        #expect(head.status == 200)
        let headers = Dictionary(head.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(headers["content-type"] == "text/event-stream; charset=utf-8")
        #expect(headers["cache-control"] == "no-cache, no-transform")
        #expect(headers["x-accel-buffering"] == "no")
        #expect(headers["content-encoding"] == nil)
        let connected = try #require(try client.readMessages(count: 1).first)
        #expect(connected.event == "connected")
        #expect(connected.retry == 3000)
        #expect(connected.id == nil)
        let data = try JSONParser.parse(Array(connected.data.utf8))
        #expect(data["topics"] == .array([.string("news"), .string("chat/*")]))
        guard case .string(let clientID)? = data["clientId"] else { Issue.record("no clientId"); return }
        #expect(!clientID.isEmpty)
        try await server.stop()
    }

    @Test func twoSubscribersOnDifferentEventLoopsBothReceive() async throws {
        let server = try await TestServer()
        let first = try server.connect()
        _ = try first.openStream("/api/events?topic=news")
        _ = try first.readMessages(count: 1)
        let second = try server.connect()
        _ = try second.openStream("/api/events?topic=news")
        _ = try second.readMessages(count: 1)
        #expect(try server.subscribersPerLoop() == [1, 1])
        let id = try server.publish(#"{"topic":"news","data":"hello","event":"update"}"#)
        for client in [first, second] {
            let message = try #require(try client.readMessages(count: 1).first)
            #expect(message.id == id)
            #expect(message.event == "update")
            #expect(message.data == "hello")
        }
        try await server.stop()
    }

    @Test func wildcardAndExactSelectorsOnOneStreamDeliverEachEventOnce() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        _ = try client.openStream("/api/events?topic=chat/lobby&topic=chat/*,**")
        _ = try client.readMessages(count: 1)
        let a = try server.publish(#"{"topic":"chat/lobby","data":"1"}"#)
        let b = try server.publish(#"{"topics":["chat/lobby","chat/other"],"data":"2"}"#)
        let c = try server.publish(#"{"topic":"deep/a/b","data":"3"}"#)
        let messages = try client.readMessages(count: 3)
        #expect(messages.map(\.id) == [a, b, c])
        #expect(messages.map(\.data) == ["1", "2", "3"])
        try await server.stop()
    }

    @Test func resumeReplaysExactlyTheMissedEventsThenLiveOnes() async throws {
        let server = try await TestServer()
        let ids = try (1...5).map { try server.publish(#"{"topic":"news","data":"\#($0)"}"#) }
        try server.publish(#"{"topic":"other","data":"not selected"}"#)
        for (header, query) in [(ids[1], nil), (nil, "lastEventId"), (nil, "last_event_id"), (nil, "lastEventID")]
            as [(String?, String?)]
        {
            let client = try server.connect()
            var target = "/api/events?topic=news"
            if let query { target += "&\(query)=\(ids[1])" }
            _ = try client.openStream(target, headers: header.map { [("Last-Event-ID", $0)] } ?? [])
            let messages = try client.readMessages(count: 4)
            #expect(messages.map(\.event) == ["connected", "message", "message", "message"])
            #expect(messages.dropFirst().map(\.id) == ids[2...].map { Optional($0) })
            #expect(messages.dropFirst().map(\.data) == ["3", "4", "5"])
        }
        // The header wins over the query parameter.
        let client = try server.connect()
        _ = try client.openStream("/api/events?topic=news&lastEventId=\(ids[0])", headers: [("Last-Event-ID", ids[3])])
        let messages = try client.readMessages(count: 2)
        #expect(messages[1].id == ids[4])
        let live = try server.publish(#"{"topic":"news","data":"live"}"#)
        #expect(try client.readMessages(count: 1).first?.id == live)
        try await server.stop()
    }

    @Test func gapFrameComesFirstWhenHistoryNoLongerReachesBack() async throws {
        let server = try await TestServer { $0.bus.history.eventsPerTopic = 3 }
        let ids = try (1...6).map { try server.publish(#"{"topic":"news","data":"\#($0)"}"#) }
        let client = try server.connect()
        _ = try client.openStream("/api/events?topic=news&lastEventId=\(ids[0])")
        let messages = try client.readMessages(count: 5)
        #expect(messages[1].event == "gap")
        #expect(messages[1].id == nil)
        let gap = try JSONParser.parse(Array(messages[1].data.utf8))
        #expect(gap["lastEventId"] == .string(ids[0]))
        #expect(gap["oldestAvailable"] == .string(ids[3]))
        #expect(messages[2...].map(\.id) == ids[3...].map { Optional($0) })

        // An id this broker never issued is unknown: a gap, then everything retained.
        let stranger = try server.connect()
        _ = try stranger.openStream("/api/events?topic=news", headers: [("Last-Event-ID", "not-an-id")])
        let fromStranger = try stranger.readMessages(count: 5)
        #expect(fromStranger[1].event == "gap")
        #expect(fromStranger[2...].map(\.id) == ids[3...].map { Optional($0) })
        try await server.stop()
    }

    @Test func replayHandsOffToLiveWithNoGapAndNoDuplicateUnderConcurrentPublishing() async throws {
        let server = try await TestServer { $0.bus.history.eventsPerTopic = 10_000 }
        let total = 3000
        let published = PublishedIDs()
        let broker = server.broker
        let publisher = Thread {
            for index in 0..<total {
                let result = try! broker.publish(
                    PublishRequest(topics: [try! TopicName("race")], data: "event \(index)"))
                published.append(result.id.description)
            }
        }
        publisher.start()
        #expect(try server.waitUntil { published.count >= 200 })
        let resumeFrom = published.snapshot()[99]
        let client = try server.connect()
        _ = try client.openStream("/api/events?topic=race", headers: [("Last-Event-ID", resumeFrom)])
        _ = try client.readMessages(count: 1)  // connected
        var received: [String] = []
        while received.count < total - 100 {
            received += try client.readMessages(count: 1, timeout: .seconds(10)).compactMap(\.id)
        }
        #expect(try server.waitUntil { published.count == total })
        let expected = Array(published.snapshot()[100...])
        #expect(received.count == expected.count)
        #expect(received == expected)
        #expect(Set(received).count == received.count)
        try await server.stop()
    }

    @Test func broadcastReachesSubscribersOfEveryTopic() async throws {
        let server = try await TestServer()
        var clients: [RawConnection] = []
        for topic in ["a", "b/c", "x/**"] {
            let client = try server.connect()
            _ = try client.openStream("/api/events?topic=\(topic)")
            _ = try client.readMessages(count: 1)
            clients.append(client)
        }
        let response = try server.request(
            "POST", "/api/messages/broadcast", headers: [("Content-Type", "application/json")],
            body: #"{"data":{"notice":"maintenance"},"event":"announcement"}"#)
        #expect(response.status == 200)
        #expect(try response.json()["subscribers"] == .number("3"))
        #expect(try response.json()["topics"] == .array([.string("$broadcast")]))
        for client in clients {
            let message = try #require(try client.readMessages(count: 1).first)
            #expect(message.event == "announcement")
            #expect(message.data == #"{"notice":"maintenance"}"#)
        }
        try await server.stop()
    }

    @Test func directMessageReachesOnlyItsTarget() async throws {
        let server = try await TestServer()
        let target = try server.connect()
        _ = try target.openStream("/api/events?topic=room")
        let connected = try JSONParser.parse(Array(try target.readMessages(count: 1)[0].data.utf8))
        guard case .string(let clientID)? = connected["clientId"] else { Issue.record("no clientId"); return }
        let bystander = try server.connect()
        _ = try bystander.openStream("/api/events?topic=room")
        _ = try bystander.readMessages(count: 1)

        let response = try server.request(
            "POST", "/api/message", headers: [("Content-Type", "application/json")],
            body: #"{"to":"\#(clientID)","data":"just for you","event":"dm"}"#)
        #expect(response.status == 200)
        #expect(try response.json()["subscribers"] == .number("1"))
        let message = try #require(try target.readMessages(count: 1).first)
        #expect(message.data == "just for you")
        #expect(message.event == "dm")
        // The bystander's next event is the one after, not the direct message.
        let after = try server.publish(#"{"topic":"room","data":"for all"}"#)
        #expect(try bystander.readMessages(count: 1).first?.id == after)
        try await server.stop()
    }

    @Test func idempotentPublishDeliversOnce() async throws {
        let server = try await TestServer()
        let client = try server.connect()
        _ = try client.openStream("/api/events?topic=orders")
        _ = try client.readMessages(count: 1)
        let key = [("Idempotency-Key", "order-42")]
        let first = try server.request(
            "POST", "/api/events/publish", headers: [("Content-Type", "application/json")] + key,
            body: #"{"topic":"orders","data":"paid"}"#)
        let retry = try server.request(
            "POST", "/api/events/publish", headers: [("Content-Type", "application/json")] + key,
            body: #"{"topic":"orders","data":"paid"}"#)
        #expect(first.status == 200 && retry.status == 200)
        #expect(try first.json()["id"] == retry.json()["id"])
        #expect(retry.header("Idempotent-Replayed") == "true")
        #expect(first.header("Idempotent-Replayed") == nil)
        let next = try server.publish(#"{"topic":"orders","data":"shipped"}"#)
        let messages = try client.readMessages(count: 2)
        #expect(messages.map(\.data) == ["paid", "shipped"])
        #expect(messages[1].id == next)
        try await server.stop()
    }

    @Test func stalledSubscriberIsCutWhileAnotherKeepsReceiving() async throws {
        let server = try await TestServer { $0.slowConsumerBytes = 64 * 1024 }
        let stalled = try server.connect(receiveBufferSize: 4096)
        _ = try stalled.openStream("/api/events?topic=firehose")
        _ = try stalled.readMessages(count: 1)
        let healthy = try server.connect()
        _ = try healthy.openStream("/api/events?topic=firehose")
        _ = try healthy.readMessages(count: 1)
        // The kernel buffers up to a few MiB per socket before the broker's own cap is reached, so publish until the
        // stalled reader is cut (bounded: 2000 events of 8 KB), checking the healthy reader gets every event.
        let payload = String(repeating: "x", count: 8000)
        var published = 0
        var received = 0
        while published < 2000 && server.broker.stats().connections[.sse] == 2 {
            try server.publish(#"{"topic":"firehose","data":"\#(payload)"}"#)
            published += 1
            received += try healthy.readMessages(count: 1).count
        }
        #expect(server.broker.stats().connections[.sse] == 1, "the stalled subscriber was not cut")
        #expect(received == published)
        // The healthy one goes on receiving.
        let after = try server.publish(#"{"topic":"firehose","data":"after"}"#)
        #expect(try healthy.readMessages(count: 1).first?.id == after)
        let topic = try server.request("GET", "/api/topics/firehose")
        #expect(try topic.json()["subscribers"] == .number("1"))
        // What it had not read is still in history for its resume.
        let history = try server.request("GET", "/api/topics/firehose")
        #expect(try history.json()["historySize"] == .number(String(min(published + 1, 1000))))
        try await server.stop()
    }

    @Test func heartbeatCommentsKeepTheStreamAlive() async throws {
        let server = try await TestServer { $0.bus.heartbeatInterval = .milliseconds(100) }
        let client = try server.connect()
        _ = try client.openStream("/api/events?topic=quiet")
        _ = try client.readMessages(count: 1)
        // Heartbeats are comments: they dispatch no message, so read raw chunks.
        var comments = 0
        for _ in 0..<3 {
            let chunk = try #require(try client.readChunk(timeout: .seconds(2)))
            #expect(String(decoding: chunk, as: UTF8.self) == ": hb\n\n")
            comments += 1
        }
        #expect(comments == 3)
        try await server.stop()
    }

    @Test func curlReceivesEventsAsTheyArePublished() async throws {
        let server = try await TestServer()
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sN", "--max-time", "3", "http://127.0.0.1:\(server.port)/api/events?topic=tour"]
        let output = Pipe()
        curl.standardOutput = output
        try curl.run()
        #expect(try server.waitUntil { server.broker.stats().connections[.sse] == 1 })
        let id = try server.publish(#"{"topic":"tour","data":"line one\nline two","event":"note"}"#)
        curl.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains("event: connected\n"))
        #expect(text.contains("id: \(id)\nevent: note\ndata: line one\ndata: line two\n\n"))
        try await server.stop()
    }

    @Test func curlExpectingContinueIsNotKeptWaiting() async throws {
        let server = try await TestServer()
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        // curl would send the body after 20 s without a `100 Continue`; --max-time stops it at 10 s.
        curl.arguments = [
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--expect100-timeout", "20",
            "-H", "Expect: 100-continue", "-H", "Content-Type: text/plain", "--data-binary", "waited for the go-ahead",
            "http://127.0.0.1:\(server.port)/api/events/publish?topic=expect",
        ]
        let output = Pipe()
        curl.standardOutput = output
        let started = ContinuousClock.now
        try curl.run()
        curl.waitUntilExit()
        let elapsed = ContinuousClock.now - started
        #expect(String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == "200")
        #expect(elapsed < .seconds(5))
        let history = try server.request("GET", "/api/events/history?topic=expect")
        #expect(history.text.contains("waited for the go-ahead"))
        try await server.stop()
    }

    @Test func longPollAnswersAsSoonAsAnEventArrives() async throws {
        let server = try await TestServer()
        let last = try server.publish(#"{"topic":"poll","data":"old"}"#)
        let broker = server.broker
        let publisher = Thread {
            usleep(300_000)
            _ = try? broker.publish(PublishRequest(topics: [try! TopicName("poll")], data: "new"))
        }
        let started = ContinuousClock.now
        publisher.start()
        let response = try server.request("GET", "/api/events/history?topic=poll&after=\(last)&wait=10")
        let elapsed = ContinuousClock.now - started
        #expect(response.status == 200)
        guard case .array(let events)? = try response.json()["events"] else { Issue.record("no events"); return }
        #expect(events.count == 1)
        #expect(events.first?["data"] == .string("new"))
        #expect(elapsed < .seconds(5))
        // With nothing new, the poll answers empty once `wait` runs out.
        let empty = try server.request("GET", "/api/events/history?topic=nothing&wait=1")
        guard case .array(let none)? = try empty.json()["events"] else { Issue.record("no events"); return }
        #expect(none.isEmpty)
        try await server.stop()
    }
}

extension LiveStreamTests {
    @Test func requestPipelinedBehindALongPollIsAnsweredAfterItInOrder() async throws {
        let server = try await TestServer()
        let last = try server.publish(#"{"topic":"pp","data":"old"}"#)
        let client = try server.connect()
        try client.send(
            "GET /api/events/history?topic=pp&after=\(last)&wait=10 HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try server.waitUntil { server.broker.stats().connections[.longPoll] == 1 })
        let id = try server.publish(#"{"topic":"pp","data":"new"}"#)
        let poll = try client.readResponse()
        #expect(poll.status == 200)
        #expect(poll.text.contains(id))
        let health = try client.readResponse()
        #expect(health.status == 200)
        #expect(try health.json()["status"] == .string("ok"))
        try await server.stop()
    }
}

/// Ids recorded by a publishing thread, read by the test.
final class PublishedIDs: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [String] = []

    func append(_ id: String) { self.lock.withLock { self.ids.append(id) } }
    var count: Int { self.lock.withLock { self.ids.count } }
    func snapshot() -> [String] { self.lock.withLock { self.ids } }
}
