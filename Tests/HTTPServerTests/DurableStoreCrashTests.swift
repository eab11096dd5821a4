import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import EventBroker

/// The release broker with the SQLite store, killed with SIGKILL while clients publish, then restarted on the same
/// file: every acknowledged event is there exactly once and in order, ids keep increasing, and idempotency keys still
/// answer.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct DurableStoreCrashTests {
    /// A broker process on a free port, its log read until it listens.
    final class BrokerProcess {
        let process = Process()
        let port: Int
        private let errors = Pipe()

        init(binary: URL, arguments: [String]) throws {
            self.process.executableURL = binary
            self.process.arguments = ["serve", "--port", "0", "--log-level", "notice"] + arguments
            self.process.standardError = self.errors
            self.process.standardOutput = FileHandle.nullDevice
            try self.process.run()
            var log = ""
            let deadline = ContinuousClock.now + .seconds(30)
            while !log.contains("listening"), self.process.isRunning, ContinuousClock.now < deadline {
                log += String(decoding: self.errors.fileHandleForReading.availableData, as: UTF8.self)
            }
            guard let port = log.firstMatch(of: /port=(\d+)/).flatMap({ Int($0.1) }) else {
                ExternalCommand.stop(self.process)
                throw RawConnection.TimedOut(description: "the broker did not start: \(log)")
            }
            self.port = port
        }

        func kill9() {
            kill(self.process.processIdentifier, SIGKILL)
            self.process.waitUntilExit()
        }

        func stop() {
            kill(self.process.processIdentifier, SIGTERM)
            self.process.waitUntilExit()
        }
    }

    /// The release build of broker-cli, which `scripts/test.sh` builds before the tests.
    static func releaseBinary() -> URL? {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent(".build/release/broker-cli")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    static func publish(_ connection: RawConnection, _ body: String, key: String? = nil) throws -> String? {
        var headers = [("Content-Type", "application/json")]
        if let key { headers.append(("Idempotency-Key", key)) }
        let response = try connection.request("POST", "/api/events/publish", headers: headers, body: Array(body.utf8))
        guard response.status == 200, case .string(let id)? = try response.json()["id"] else { return nil }
        return id
    }

    @Test func killedMidStreamLosesNoAcknowledgedEventAndDuplicatesNone() async throws {
        let binary = try #require(
            Self.releaseBinary(), "the release broker-cli is missing: swift build -c release --product broker-cli")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("broker-crash-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let arguments = [
            "--store", "sqlite:\(directory.appendingPathComponent("events.db").path)", "--publish-rate", "0",
            "--history-size", "100000",
        ]
        let first = try BrokerProcess(binary: binary, arguments: arguments)
        let keyed = try #require(
            try Self.publish(
                try RawConnection(port: first.port), #"{"topic":"crash","data":"keyed"}"#, key: "crash-key"))

        // Four publishers on keep-alive connections record every id the broker acknowledges; the broker is killed
        // once 2,000 are acknowledged, while they keep publishing.
        let acknowledged = NIOLockedValueBox<[[String]]>(Array(repeating: [], count: 4))
        let done = DispatchGroup()
        for publisher in 0..<4 {
            done.enter()
            let port = first.port
            Thread.detachNewThread {
                defer { done.leave() }
                guard let connection = try? RawConnection(port: port) else { return }
                for index in 0..<20_000 {
                    let body = #"{"topic":"crash","data":"p\#(publisher)-\#(index)"}"#
                    guard let id = try? Self.publish(connection, body) else { return }
                    acknowledged.withLockedValue { $0[publisher].append(id) }
                }
            }
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while acknowledged.withLockedValue({ $0.map(\.count).reduce(0, +) }) < 2_000, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        first.kill9()
        #expect(done.wait(timeout: .now() + 30) == .success, "a publisher did not notice the broker died")
        let perPublisher = acknowledged.withLockedValue { $0 }
        let acked = Set(perPublisher.flatMap { $0 } + [keyed])
        #expect(acked.count >= 2_000)
        for ids in perPublisher {
            #expect(ids.map { UInt64($0)! } == ids.map { UInt64($0)! }.sorted(), "one publisher's ids increase")
        }

        // Restarted on the same file, a stream resuming from 0 replays everything kept: each acknowledged event
        // once, in increasing id order (events committed but not acknowledged before the kill may be there too).
        let second = try BrokerProcess(binary: binary, arguments: arguments)
        defer { second.stop() }
        let stream = try RawConnection(port: second.port)
        #expect(try stream.openStream("/api/events?topic=crash", headers: [("Last-Event-ID", "0")]).status == 200)
        let highest = acked.max { UInt64($0)! < UInt64($1)! }!
        var replayed: [String] = []
        while replayed.last.map({ UInt64($0)! < UInt64(highest)! }) ?? true {
            let messages = try stream.readMessages(count: 1, timeout: .seconds(10))
            replayed += messages.compactMap(\.id)
        }
        let numbers = replayed.map { UInt64($0)! }
        #expect(numbers == numbers.sorted(), "replay in id order")
        #expect(Set(replayed).count == replayed.count, "no event twice")
        let lost = acked.subtracting(replayed)
        #expect(lost.isEmpty, "\(lost.count) acknowledged events lost")
        #expect(replayed.count - acked.count <= 4, "at most one unacknowledged commit per publisher")

        // Ids keep increasing, and the key published before the crash still answers with its id.
        let connection = try RawConnection(port: second.port)
        let next = try #require(try Self.publish(connection, #"{"topic":"crash","data":"after"}"#))
        #expect(UInt64(next)! > UInt64(highest)!)
        let response = try connection.request(
            "POST", "/api/events/publish",
            headers: [("Content-Type", "application/json"), ("Idempotency-Key", "crash-key")],
            body: Array(#"{"topic":"crash","data":"keyed"}"#.utf8))
        #expect(try response.json()["id"] == .string(keyed))
        #expect(response.header("Idempotent-Replayed") == "true")
        print("crash test: \(acked.count) acknowledged, \(replayed.count) replayed, 0 lost, 0 duplicated")
    }

    // MARK: Start-up errors and a full disk

    @Test func unusableDatabaseStopsServeWithOneLineAndANonZeroExit() async throws {
        let binary: URL = try #require(ShutdownTests.brokerBinary())
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("broker-store-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("events.db").path
        let garbage = directory.appendingPathComponent("garbage.db").path
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: garbage))
        // A first broker holds the file: a second one on it must refuse to start.
        let holder = try BrokerProcess(binary: binary, arguments: ["--store", "sqlite:\(database)"])
        defer { holder.stop() }
        let cases: [(path: String, says: String)] = [
            (database, "locked"),
            (directory.appendingPathComponent("missing/events.db").path, "missing"),
            (garbage, "not"),
        ]
        for (path, says) in cases {
            let result = try ExternalCommand.run(
                binary.path, ["serve", "--port", "0", "--store", "sqlite:\(path)", "--log-level", "error"])
            #expect(result.status != 0, "\(path)")
            let lines = result.errors.split(separator: "\n").filter { $0.hasPrefix("Error:") }
            #expect(lines.count == 1, "\(result.errors)")
            #expect(lines.first?.contains(path) == true, "\(result.errors)")
            #expect(lines.first?.lowercased().contains(says) == true, "\(result.errors)")
        }
        // The holder still works.
        let connection = try RawConnection(port: holder.port)
        #expect(try Self.publish(connection, #"{"topic":"t","data":"x"}"#) != nil)
    }

    @Test func fullDiskAnswers503AndTheBrokerRecoversWhenSpaceReturns() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("broker-full-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteEventStore(path: directory.appendingPathComponent("events.db").path)
        let server = try await TestServer(store: store)
        let subscriber = try server.connect()
        #expect(try subscriber.openStream("/api/events?topic=t").status == 200)
        _ = try subscriber.readMessages(count: 1)
        let before = try server.publish(#"{"topic":"t","data":"before"}"#)
        // The disk fills up: SQLite may not grow the file any more.
        try store.setMaximumPageCount(try store.pageCount())
        let big = String(repeating: "x", count: 200_000)
        var refused: RawConnection.Response?
        for _ in 0..<5 {
            let response = try server.request(
                "POST", "/api/events/publish", headers: [("Content-Type", "application/json")],
                body: #"{"topic":"t","data":"\#(big)"}"#)
            if response.status != 200 {
                refused = response
                break
            }
        }
        let answer = try #require(refused, "the full store accepted every publish")
        #expect(answer.status == 503)
        #expect(answer.errorCode == "store_unavailable")
        #expect(answer.header("Retry-After") == "1")
        // Space returns: publishing works again. The subscriber got exactly the stored events: none of the refused.
        try store.setMaximumPageCount(1_000_000)
        let after = try server.publish(#"{"topic":"t","data":"after"}"#)
        var ids: [String] = []
        while ids.last != after { ids += try subscriber.readMessages(count: 1).compactMap(\.id) }
        let history = try server.request("GET", "/api/events/history?topic=t").json()
        guard case .array(let events)? = history["events"] else {
            Issue.record("no history: \(history)")
            return
        }
        let stored = events.compactMap { event -> String? in
            guard case .string(let id)? = event["id"] else { return nil }
            return id
        }
        #expect(ids == stored)
        #expect(stored.first == before)
        #expect(stored.last == after)
        try await server.stop()
    }
}
