import Foundation
import Testing

/// Delivering one event to many subscribers on one loop allocates nothing per subscriber, and a REST publish keeps
/// to its allocation budget.
///
/// Runs the release `fanout-alloc-check` (built by scripts/test.sh) with the malloc interposer preloaded, once with
/// 100 subscribers and once with 1,000: the counts may differ by less than 0.1 allocation per added subscriber.
/// Release, because debug builds leave generics unspecialized and allocate where shipped code does not.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct FanOutAllocationTests {
    static func buildDirectory() -> URL? {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent(".build/release")
            if FileManager.default.isExecutableFile(atPath: candidate.appendingPathComponent("fanout-alloc-check").path)
            {
                return candidate
            }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    static func mallocs(subscribers: Int, webSocket: Bool, in directory: URL) throws -> Int {
        let text = try Self.run([String(subscribers)] + (webSocket ? ["--ws"] : []), in: directory)
        let count = text.firstMatch(of: /"mallocs":(\d+)/).flatMap { Int($0.1) }
        return try #require(count, "no count in '\(text)'")
    }

    /// The check's output, with the interposer preloaded.
    static func run(_ arguments: [String], in directory: URL) throws -> String {
        let process = Process()
        process.executableURL = directory.appendingPathComponent("fanout-alloc-check")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["LD_PRELOAD"] = directory.appendingPathComponent("libMallocInterposerSwift.so").path
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(text)")
        return text
    }

    @Test(arguments: [false, true])
    func deliveringOneEventToAThousandSubscribersAllocatesNothingPerSubscriber(webSocket: Bool) throws {
        let directory = try #require(
            Self.buildDirectory(), "build it first: swift build -c release --product fanout-alloc-check")
        let few = try Self.mallocs(subscribers: 100, webSocket: webSocket, in: directory)
        let many = try Self.mallocs(subscribers: 1000, webSocket: webSocket, in: directory)
        #expect(many - few < 90, "100 subscribers: \(few) mallocs, 1000 subscribers: \(many) mallocs")
        #expect(many < 100, "one event to 1000 subscribers cost \(many) mallocs")
    }

    /// The allocations of a publish as the bench sends it (raw text body, `?topic=`), from the request's bytes to
    /// its answer's: the head, the topic list and the topics, the data, the event and its frame, the answer's text.
    /// 22 before the history's ring lookup stopped allocating, the answer stopped building strings it copies and a
    /// connection reused its answer buffer; 13 before the target stopped copying its path and listing its query; a
    /// new one on this path fails here.
    @Test func aPublishKeepsToItsAllocationBudget() throws {
        let directory = try #require(
            Self.buildDirectory(), "build it first: swift build -c release --product fanout-alloc-check")
        let text = try Self.run(["--publishes", "1000"], in: directory)
        let perPublish = try #require(
            text.firstMatch(of: /"mallocsPerPublish":([\d.]+)/).flatMap { Double($0.1) }, "no count in '\(text)'")
        // Half an allocation of slack: the broker's once-a-second sweep may fall inside the measured publishes and
        // allocate a few times; one more allocation per publish still fails.
        #expect(perPublish < 10.5, "a publish cost \(perPublish) mallocs; the budget is 10")
    }
}
