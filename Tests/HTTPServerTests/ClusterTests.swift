import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import EventBroker

/// Several release brokers sharing one PostgreSQL database (`scripts/postgres.sh` starts a real server on a free
/// port): one id sequence, events published on one node delivered by every node, failover without loss, direct
/// messages, presence and idempotency across nodes, and a database outage under load.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct ClusterTests {
    /// Stopped with SIGKILL: a child of the test process inherits its blocked signals, SIGTERM among them.
    typealias BrokerProcess = DurableStoreCrashTests.BrokerProcess

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Runs `scripts/postgres.sh` with `arguments` (it starts the server if none runs); returns its output line.
    @discardableResult
    static func postgres(_ arguments: String...) throws -> String {
        let result = try ExternalCommand.run(
            "/bin/bash", [Self.repository.appendingPathComponent("scripts/postgres.sh").path] + arguments)
        guard result.status == 0 else {
            throw RawConnection.TimedOut(description: "postgres.sh \(arguments) failed: \(result.errors)")
        }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A fresh database on the test server.
    static func freshDatabase(_ name: String) throws -> String {
        try Self.postgres("start")
        return try Self.postgres("createdb", name)
    }

    /// Runs one SQL statement on `url` with psql and returns its single value.
    static func sql(_ url: String, _ statement: String) throws -> String {
        let result = try ExternalCommand.run("/usr/bin/psql", ["-X", "-A", "-t", "-d", url, "-c", statement])
        guard result.status == 0 else { throw RawConnection.TimedOut(description: "psql failed: \(result.errors)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func binary() throws -> URL {
        try #require(
            DurableStoreCrashTests.releaseBinary(),
            "the release broker-cli is missing: swift build -c release --product broker-cli")
    }

    static func nodes(_ count: Int, url: String, _ extra: [String] = []) throws -> [BrokerProcess] {
        let binary = try Self.binary()
        return try (0..<count).map { _ in
            try BrokerProcess(binary: binary, arguments: ["--store", url, "--publish-rate", "0"] + extra)
        }
    }

    static func publish(_ connection: RawConnection, topic: String, data: String) throws -> String? {
        try DurableStoreCrashTests.publish(connection, #"{"topic":"\#(topic)","data":"\#(data)"}"#)
    }

    /// Reads a stream's events until `isDone` holds for the ids so far, or `timeout` passes.
    static func read(
        _ stream: RawConnection, into ids: inout [String], timeout: Duration, until isDone: ([String]) -> Bool
    ) {
        let deadline = ContinuousClock.now + timeout
        while !isDone(ids), ContinuousClock.now < deadline {
            guard let messages = try? stream.readMessages(count: 1, timeout: .milliseconds(500)) else { continue }
            ids += messages.filter { $0.event != "connected" }.compactMap(\.id)
        }
    }

    @Test func eventsPublishedOnAnyNodeReachEveryNodeInOneOrderWithTheSameIDs() throws {
        let url = try Self.freshDatabase("cluster_order")
        let nodes = try Self.nodes(3, url: url)
        defer { for node in nodes { node.kill9() } }
        let streams = try nodes.map { node in
            let stream = try RawConnection(port: node.port)
            #expect(try stream.openStream("/api/events?topic=orders").status == 200)
            _ = try stream.readMessages(count: 1)  // connected
            return stream
        }
        // 90 events, published round-robin on the three nodes.
        let publishers = try nodes.map { try RawConnection(port: $0.port) }
        var acknowledged: [String] = []
        for index in 0..<90 {
            acknowledged.append(
                try #require(try Self.publish(publishers[index % 3], topic: "orders", data: "order-\(index)")))
        }
        let numbers = acknowledged.map { UInt64($0)! }
        #expect(numbers == numbers.sorted(), "one sequence: each publish's id is above the one before, whatever node")
        #expect(Set(numbers).count == numbers.count)
        for (index, stream) in streams.enumerated() {
            var received: [String] = []
            Self.read(stream, into: &received, timeout: .seconds(20)) { $0.count >= acknowledged.count }
            #expect(received == acknowledged, "node \(index + 1) delivers every event, in the same order, same ids")
        }
        // History is the same on every node, and a Last-Event-ID of one node resumes on another.
        let resumed = try RawConnection(port: nodes[2].port)
        #expect(
            try resumed.openStream("/api/events?topic=orders", headers: [("Last-Event-ID", acknowledged[59])]).status
                == 200)
        var replayed: [String] = []
        Self.read(resumed, into: &replayed, timeout: .seconds(10)) { $0.count >= 30 }
        #expect(replayed == Array(acknowledged[60...]))
    }

    @Test func aSubscriberOfAKilledNodeResumesOnAnotherWithNothingLostAndNothingTwice() async throws {
        let url = try Self.freshDatabase("cluster_failover")
        // History holds every event of the run, so a resume finds all it missed.
        let nodes = try Self.nodes(3, url: url, ["--history-size", "100000"])
        defer { for node in nodes { node.kill9() } }
        let total = 3_000
        // Two publishers on node 1 record every id it acknowledges.
        let acknowledged = NIOLockedValueBox<[String]>([])
        let done = DispatchGroup()
        let publisherPort = nodes[0].port
        let stream = try RawConnection(port: nodes[1].port)
        #expect(try stream.openStream("/api/events?topic=failover").status == 200)
        var received: [String] = []
        Self.read(stream, into: &received, timeout: .seconds(5)) { _ in true }
        for publisher in 0..<2 {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                guard let connection = try? RawConnection(port: publisherPort) else { return }
                for index in 0..<(total / 2) {
                    guard let id = try? Self.publish(connection, topic: "failover", data: "p\(publisher)-\(index)")
                    else { return }
                    acknowledged.withLockedValue { $0.append(id) }
                }
            }
        }
        // Mid-stream, node 2 is killed; the subscriber reconnects to node 3 with the last id it received.
        Self.read(stream, into: &received, timeout: .seconds(30)) { $0.count >= total / 3 }
        nodes[1].kill9()
        Self.read(stream, into: &received, timeout: .milliseconds(300)) { _ in false }  // what was still in flight
        let lastID = try #require(received.last)
        let resumed = try RawConnection(port: nodes[2].port)
        #expect(
            try resumed.openStream("/api/events?topic=failover", headers: [("Last-Event-ID", lastID)]).status == 200)
        #expect(done.wait(timeout: .now() + 60) == .success, "the publishers finished")
        let acked = acknowledged.withLockedValue { $0 }
        #expect(acked.count == total)
        let highest = acked.max { UInt64($0)! < UInt64($1)! }!
        Self.read(resumed, into: &received, timeout: .seconds(30)) { ids in
            ids.last.map { UInt64($0)! >= UInt64(highest)! } ?? false
        }
        let numbers = received.map { UInt64($0)! }
        #expect(numbers == numbers.sorted(), "in id order across the failover")
        #expect(Set(received).count == received.count, "nothing twice")
        let lost = Set(acked).subtracting(received)
        #expect(lost.isEmpty, "\(lost.count) acknowledged events lost")
        print(
            "cluster failover: \(acked.count) acknowledged on node 1, node 2 killed after \(lastID), "
                + "\(received.count) received across nodes 2 and 3, \(lost.count) lost, "
                + "\(received.count - Set(received).count) duplicated")
    }

    @Test func directMessagesPresenceAndIdempotencyKeysWorkAcrossNodes() throws {
        let url = try Self.freshDatabase("cluster_presence")
        let nodes = try Self.nodes(3, url: url)
        defer { for node in nodes { node.kill9() } }
        // A watcher of the room's presence on node 3, then Alice joins the room on node 2.
        let watcher = try RawConnection(port: nodes[2].port)
        #expect(try watcher.openStream("/api/events?topic=$presence/room").status == 200)
        _ = try watcher.readMessages(count: 1)
        let alice = try RawConnection(port: nodes[1].port)
        #expect(try alice.openStream("/api/events?topic=room&name=alice").status == 200)
        let connected = try alice.readMessages(count: 1)[0]
        let aliceID = try #require(try JSONParser.parse(Array(connected.data.utf8))["clientId"]?.stringValue)

        // Presence, asked of node 1, lists her (the other nodes' members are refreshed within seconds).
        let asker = try RawConnection(port: nodes[0].port)
        var members: [JSONValue] = []
        let deadline = ContinuousClock.now + .seconds(10)
        while members.isEmpty, ContinuousClock.now < deadline {
            let response = try asker.request("GET", "/api/topics/room")
            if response.status == 200, case .array(let list)? = try response.json()["members"] { members = list }
            if members.isEmpty { Thread.sleep(forTimeInterval: 0.2) }
        }
        #expect(members.count == 1)
        #expect(members.first?["clientId"]?.stringValue == aliceID)
        #expect(members.first?["name"]?.stringValue == "alice")
        // The watcher on node 3 saw her join on node 2.
        let join = try watcher.readMessages(count: 1, timeout: .seconds(10))[0]
        #expect(join.event == "join")
        #expect(try JSONParser.parse(Array(join.data.utf8))["clientId"]?.stringValue == aliceID)

        // A direct message sent through node 1 reaches her on node 2; one to nobody is a 404.
        let sent = try asker.request(
            "POST", "/api/message", headers: [("Content-Type", "application/json")],
            body: Array(#"{"to":"\#(aliceID)","data":"psst"}"#.utf8))
        #expect(sent.status == 200)
        #expect(try sent.json()["subscribers"] == .number("1"))
        let direct = try alice.readMessages(count: 1, timeout: .seconds(10))[0]
        #expect(direct.data == "psst")
        #expect(direct.id == (try sent.json()["id"]?.stringValue))
        let nobody = try asker.request(
            "POST", "/api/message", headers: [("Content-Type", "application/json")],
            body: Array(#"{"to":"000000000000000","data":"psst"}"#.utf8))
        #expect(nobody.status == 404)

        // An idempotency key used on node 1 answers with the same id on nodes 2 and 3, and the event is stored once.
        var answers: [(status: Int, id: String?, replayed: String?)] = []
        for node in nodes {
            let connection = try RawConnection(port: node.port)
            let response = try connection.request(
                "POST", "/api/events/publish",
                headers: [("Content-Type", "application/json"), ("Idempotency-Key", "order-42")],
                body: Array(#"{"topic":"keys","data":"once"}"#.utf8))
            answers.append(
                (response.status, try response.json()["id"]?.stringValue, response.header("Idempotent-Replayed")))
        }
        #expect(answers.map(\.status) == [200, 200, 200])
        #expect(Set(answers.map(\.id)).count == 1)
        #expect(answers.map(\.replayed) == [nil, "true", "true"])
        #expect(try Self.sql(url, "SELECT count(*) FROM eventbroker_events WHERE topics = '{keys}'") == "1")
    }

    @Test func retentionOnTheSharedTableKeepsWhatTheHistoryKeeps() throws {
        let url = try Self.freshDatabase("cluster_retention")
        let nodes = try Self.nodes(2, url: url, ["--history-size", "10"])
        defer { for node in nodes { node.kill9() } }
        let publisher = try RawConnection(port: nodes[0].port)
        var acknowledged: [String] = []
        for index in 0..<40 {
            acknowledged.append(try #require(try Self.publish(publisher, topic: "kept", data: "e\(index)")))
        }
        // Each node sweeps once a second; one of them at a time applies it to the table.
        var stored = ""
        let deadline = ContinuousClock.now + .seconds(15)
        while stored != "10", ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.3)
            stored = try Self.sql(url, "SELECT count(*) FROM eventbroker_events")
        }
        #expect(stored == "10")
        #expect(
            try Self.sql(url, "SELECT min(id) FROM eventbroker_events") == acknowledged[30],
            "the newest ten are kept")
        // A node that starts now loads the same ten, and knows a client resuming from before them missed some.
        let late = try Self.nodes(1, url: url, ["--history-size", "10"])[0]
        defer { late.kill9() }
        let stream = try RawConnection(port: late.port)
        #expect(
            try stream.openStream("/api/events?topic=kept", headers: [("Last-Event-ID", acknowledged[5])]).status == 200
        )
        var ids: [String] = []
        var events: [String] = []
        let deadline2 = ContinuousClock.now + .seconds(10)
        while ids.count < 10, ContinuousClock.now < deadline2 {
            for message in try stream.readMessages(count: 1) {
                events.append(message.event)
                if message.event == "message", let id = message.id { ids.append(id) }
            }
        }
        #expect(events.contains("gap"), "a gap notice: events after the resumed id were dropped")
        #expect(ids == Array(acknowledged[30...]))
    }

    @Test(
        .disabled(
            "Passes alone (ClusterTests filter), but beside the other suites a publish stalled past 10 s after the restart; under investigation (issue 8)"
        ))
    func aDatabaseOutageAnswers503KeepsStreamsOpenAndLosesNothingAcknowledged() async throws {
        let url = try Self.freshDatabase("cluster_outage")
        let nodes = try Self.nodes(2, url: url)
        defer { for node in nodes { node.kill9() } }
        let stream = try RawConnection(port: nodes[1].port)
        #expect(try stream.openStream("/api/events?topic=outage").status == 200)
        _ = try stream.readMessages(count: 1)
        // A publisher on node 1 keeps publishing through the outage, recording acknowledged ids and refusals.
        let acknowledged = NIOLockedValueBox<[String]>([])
        let refusals = NIOLockedValueBox<[String]>([])
        let stop = NIOLockedValueBox(false)
        let done = DispatchGroup()
        let port = nodes[0].port
        done.enter()
        Thread.detachNewThread {
            defer { done.leave() }
            guard let connection = try? RawConnection(port: port) else { return }
            var index = 0
            while !stop.withLockedValue({ $0 }) {
                index += 1
                guard
                    let response = try? connection.request(
                        "POST", "/api/events/publish", headers: [("Content-Type", "application/json")],
                        body: Array(#"{"topic":"outage","data":"e\#(index)"}"#.utf8), timeout: .seconds(10))
                else { return }
                if response.status == 200, let id = try? response.json()["id"]?.stringValue {
                    acknowledged.withLockedValue { $0.append(id) }
                } else {
                    let code = (try? response.json()["error"]?["code"]?.stringValue) ?? "status \(response.status)"
                    refusals.withLockedValue { $0.append("\(response.status) \(code)") }
                    Thread.sleep(forTimeInterval: 0.02)
                }
            }
        }
        try await Task.sleep(for: .seconds(1))
        try Self.postgres("stop")
        try await Task.sleep(for: .seconds(3))
        let refusedDuringOutage = refusals.withLockedValue { $0.count }
        try Self.postgres("start")
        // Publishing resumes once the nodes reconnect; then a few more seconds of load.
        let deadline = ContinuousClock.now + .seconds(30)
        let before = acknowledged.withLockedValue { $0.count }
        while acknowledged.withLockedValue({ $0.count }) < before + 200, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        stop.withLockedValue { $0 = true }
        #expect(done.wait(timeout: .now() + 20) == .success)
        let acked = acknowledged.withLockedValue { $0 }
        let refused = refusals.withLockedValue { $0 }
        #expect(refusedDuringOutage > 0, "publishes were refused while the database was down")
        #expect(Set(refused).allSatisfy { $0 == "503 store_unavailable" }, "refusals: \(Set(refused))")
        #expect(acked.count >= before + 200, "publishing resumed")
        // The stream on node 2 stayed open through the outage and has every acknowledged event once, in order.
        var received: [String] = []
        let highest = acked.max { UInt64($0)! < UInt64($1)! }!
        Self.read(stream, into: &received, timeout: .seconds(30)) { ids in
            ids.last.map { UInt64($0)! >= UInt64(highest)! } ?? false
        }
        let numbers = received.map { UInt64($0)! }
        #expect(numbers == numbers.sorted())
        #expect(Set(received).count == received.count)
        let lost = Set(acked).subtracting(received)
        #expect(lost.isEmpty, "\(lost.count) acknowledged events lost")
        print(
            "cluster outage: \(acked.count) acknowledged, \(refused.count) refused with 503, \(received.count) "
                + "received on the other node's open stream, \(lost.count) lost")
    }

    @Test func startsNotWhenPostgreSQLIsUnreachable() throws {
        let result = try ExternalCommand.run(
            try Self.binary().path,
            ["serve", "--port", "0", "--store", "postgres://broker:hunter22@127.0.0.1:1/events"])
        #expect(result.status != 0)
        #expect(result.errors.contains("PostgreSQL at postgres://broker@127.0.0.1:1/events is unreachable"))
        #expect(!result.errors.contains("hunter22"), "the password is never printed")
    }
}

extension JSONValue {
    /// The string this value holds; nil for any other kind of value.
    fileprivate var stringValue: String? {
        guard case .string(let text) = self else { return nil }
        return text
    }
}
