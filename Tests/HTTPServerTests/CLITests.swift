import EventBroker
import Foundation
import Testing

/// The real `broker-cli publish` and `broker-cli subscribe` processes against a real server.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct CLITests {
    static func run(_ arguments: [String], input: URL? = nil) throws -> (status: Int32, output: String, errors: String)
    {
        let process = Process()
        let binary: URL = try #require(ShutdownTests.brokerBinary())
        process.executableURL = binary
        process.arguments = arguments
        if let input { process.standardInput = try FileHandle(forReadingFrom: input) }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        return (
            process.terminationStatus,
            String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
            String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        )
    }

    @Test(arguments: [false, true])
    func subscribePrintsWhatPublishSendsOneJSONObjectALine(overWebSocket: Bool) async throws {
        let server = try await TestServer()
        let url = "http://127.0.0.1:\(server.port)"
        let subscriber = Process()
        let binary: URL = try #require(ShutdownTests.brokerBinary())
        subscriber.executableURL = binary
        subscriber.arguments =
            ["subscribe", "--url", url, "--topic", "cli/*", "--json", "--max-events", "3"]
            + (overWebSocket ? ["--ws"] : [])
        let output = Pipe()
        subscriber.standardOutput = output
        subscriber.standardError = Pipe()
        try subscriber.run()
        #expect(try server.waitUntil { server.broker.stats().connections[overWebSocket ? .webSocket : .sse] == 1 })

        var ids: [String] = []
        for (data, extra) in [("one", [String]()), ("two", ["--event", "note"]), (#"{"n":3}"#, ["--json"])] {
            let published = try Self.run(["publish", "--url", url, "--topic", "cli/a", "--data", data] + extra)
            #expect(published.status == 0, "\(published.errors)")
            let answer = try JSONParser.parse(Array(published.output.utf8))
            guard case .string(let id)? = answer["id"] else {
                Issue.record("no id in \(published.output)")
                return
            }
            ids.append(id)
        }
        subscriber.waitUntilExit()
        #expect(subscriber.terminationStatus == 0)
        let lines = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "\n").map { try? JSONParser.parse(Array($0.utf8)) }
        let events = lines.compactMap { $0 }.filter { $0["id"] != .null && $0["id"] != nil }
        #expect(events.map { $0["id"] } == ids.map { .string($0) })
        #expect(events.map { $0["data"] } == [.string("one"), .string("two"), .string(#"{"n":3}"#)])
        #expect(events[1]["event"] == .string("note"))
        try await server.stop()
    }

    @Test(arguments: [false, true])
    func tokensFromTheTokenCommandLetPublishAndSubscribeThrough(overWebSocket: Bool) async throws {
        let server = try await SecurityTests.server(leeway: .seconds(5))
        let url = "http://127.0.0.1:\(server.port)"
        func mint(_ grants: [String]) throws -> String {
            let minted = try Self.run(
                ["token", "--secret", SecurityTokens.secret, "--aud", SecurityTests.audience, "--ttl", "5m"] + grants)
            #expect(minted.status == 0, "\(minted.errors)")
            return minted.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let publisher = try mint(["--publish", "cli/*"])
        let reader = try mint(["--subscribe", "cli/**"])
        let subscriber = Process()
        let binary: URL = try #require(ShutdownTests.brokerBinary())
        subscriber.executableURL = binary
        subscriber.arguments =
            ["subscribe", "--url", url, "--topic", "cli/*", "--json", "--max-events", "1", "--token", reader]
            + (overWebSocket ? ["--ws"] : [])
        let output = Pipe()
        subscriber.standardOutput = output
        subscriber.standardError = Pipe()
        try subscriber.run()
        defer { ExternalCommand.stop(subscriber) }
        #expect(try server.waitUntil { server.broker.stats().connections[overWebSocket ? .webSocket : .sse] == 1 })

        let anonymous = try Self.run(["publish", "--url", url, "--topic", "cli/a", "--data", "x"])
        #expect(anonymous.status == 1)
        #expect(anonymous.errors.contains("missing_token"), "\(anonymous.errors)")
        let forbidden = try Self.run(
            ["publish", "--url", url, "--topic", "other", "--data", "x", "--token", publisher])
        #expect(forbidden.status == 1)
        #expect(forbidden.errors.contains("forbidden") || forbidden.errors.contains("do not allow"))
        let published = try Self.run(
            ["publish", "--url", url, "--topic", "cli/a", "--data", "secret", "--token", publisher])
        #expect(published.status == 0, "\(published.errors)")
        subscriber.waitUntilExit()
        #expect(subscriber.terminationStatus == 0)
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(printed.contains(#""data":"secret""#), "\(printed)")
        try await server.stop()
    }

    @Test(arguments: [
        ("2s", "--batch-window must be at most 1s."),
        ("soon", "--batch-window: 'soon' is not a duration"),
    ])
    func serveRefusesABadBatchWindow(window: String, message: String) throws {
        let result = try Self.run(["serve", "--port", "0", "--batch-window", window])
        #expect(result.status != 0)
        #expect(result.errors.contains(message), "\(result.errors)")
    }

    /// The broker refuses a body over its limit by the `Content-Length`, before reading it, and closes; the CLI
    /// reports that refusal, not the failed write of the rest of the body.
    @Test func publishReportsTheRefusalOfABodyOverTheLimit() async throws {
        let server = try await TestServer { $0.maxBodyBytes = 1024 }
        let file = FileManager.default.temporaryDirectory.appending(path: "broker-cli-oversized-\(UUID()).txt")
        try Data(repeating: UInt8(ascii: "x"), count: 32 * 1024 * 1024).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let refused = try Self.run(
            ["publish", "--url", "http://127.0.0.1:\(server.port)", "--topic", "a", "--data", "-"], input: file)
        #expect(refused.status == 1)
        #expect(refused.errors.contains("payload_too_large"), "\(refused.errors)")
        try await server.stop()
    }

    @Test func publishReportsARefusalAndExitsNonZero() async throws {
        let server = try await TestServer()
        let refused = try Self.run(
            ["publish", "--url", "http://127.0.0.1:\(server.port)", "--topic", "$reserved", "--data", "x"])
        #expect(refused.status != 0)
        #expect(refused.errors.contains("reserved"))
        try await server.stop()
    }
}
