import EventBroker
import Foundation
import Testing

@Suite(.serialized, .timeLimit(.minutes(1)))
struct ShutdownTests {
    @Test func shutdownEndsStreamsWithARetryHintAndAnswersLongPolls() async throws {
        let server = try await TestServer()
        let stream = try server.connect()
        _ = try stream.openStream("/api/events?topic=news")
        _ = try stream.readMessages(count: 1)
        let poll = try server.connect()
        try poll.send("GET /api/events/history?topic=quiet&wait=30 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try server.waitUntil { server.broker.stats().connections[.longPoll] == 1 })
        let started = ContinuousClock.now
        await server.server.stop()
        let end = try stream.readMessagesUntilEnd()
        #expect(end.retry == 1000)
        try stream.waitForClose()
        let answer = try poll.readResponse()
        #expect(answer.status == 200)
        #expect(answer.header("Connection") == "close")
        #expect(ContinuousClock.now - started < .seconds(5))
        try await server.stop()
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func brokerProcessExitsCleanlyOnSignal(_ signal: Int32) async throws {
        let binary = try #require(Self.brokerBinary(), "broker-cli is built by `swift build` before the tests")
        let process = Process()
        process.executableURL = binary
        process.arguments = ["serve", "--port", "0", "--log-level", "notice"]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        // Wait for the listening line to learn the port.
        var log = ""
        let deadline = ContinuousClock.now + .seconds(20)
        while !log.contains("listening"), ContinuousClock.now < deadline {
            log += String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
        }
        let port = try #require(log.firstMatch(of: /port=(\d+)/).flatMap { Int($0.1) })
        let stream = try RawConnection(port: port)
        _ = try stream.openStream("/api/events?topic=news")
        _ = try stream.readMessages(count: 1)
        let started = ContinuousClock.now
        kill(process.processIdentifier, signal)
        let end = try stream.readMessagesUntilEnd()
        #expect(end.retry == 1000)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    /// The `broker-cli` built in the same configuration as these tests, never a stale one from the other.
    static func brokerBinary() -> URL? {
        #if DEBUG
            let configuration = "debug"
        #else
            let configuration = "release"
        #endif
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent(".build/\(configuration)/broker-cli")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }
}
