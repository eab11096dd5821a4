import ArgumentParser
import BrokerBench
import BrokerClient

/// `broker-cli bench`: a load generator for this broker or another (nchan) through path and body templates.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure fan-out: subscribers, publish rate, deliveries per second, latency, broker memory and CPU.",
        discussion: """
            Opens --subscribers SSE streams spread over --topics topics, publishes --events events of --size bytes \
            over --publishers keep-alive connections (at --rate events/s, or as fast as possible), waits for every \
            delivery, and prints the results and a one-line JSON summary. Each payload carries a send timestamp, so \
            latency is measured end to end; loss, duplicates and reordering are counted per publisher and topic.

            Examples:
              broker-cli bench --subscribers 1000 --events 2000 --rate 200 --pid $(pgrep -f 'broker-cli serve')
              broker-cli bench --url http://127.0.0.1:8081 --subscribe-path '/sub/{topic}' --publish-path '/pub/{topic}'
            """
    )

    @Option(help: "The broker's base URL.")
    var url = "http://127.0.0.1:8080"

    @Option(help: "SSE subscribers to open.")
    var subscribers = 100

    @Option(help: "How many of the subscribers use a WebSocket instead of SSE.")
    var wsSubscribers = 0

    @Option(help: "WebSocket upgrade path template; {topic} is replaced.")
    var wsPath = "/api/ws?topic={topic}"

    @Option(help: "Topics the subscribers and events are spread over.")
    var topics = 1

    @Option(help: "Events to publish.")
    var events = 1000

    @Option(help: "Bytes of data per event (at least the ~40-byte header the bench writes).")
    var size = 128

    @Option(help: "Events per second over all publishers; 0 publishes as fast as the broker answers.")
    var rate = 0

    @Option(help: "Keep-alive publishing connections.")
    var publishers = 4

    @Option(help: "Subscribe path template; {topic} is replaced.")
    var subscribePath = "/api/events?topic={topic}"

    @Option(help: "Publish path template; {topic} is replaced.")
    var publishPath = "/api/events/publish?topic={topic}"

    @Option(help: "Publish body template; {data} is the payload, {topic} the topic.")
    var body = "{data}"

    @Option(help: "Content-Type of the publish requests.")
    var contentType = "text/plain"

    @Option(help: "PID of a broker process to sample for memory and CPU (repeat for several, e.g. nginx workers).")
    var pid: [Int32] = []

    @Option(help: "Subscriber connections opened at once.")
    var connectConcurrency = 256

    @Option(help: "Seconds to wait for the last deliveries after the last publish.")
    var drainTimeout = 10

    @Option(help: "Client event loop threads.")
    var threads = 1

    @Option(help: "Topic name prefix (a random suffix keeps runs apart).")
    var topicPrefix: String?

    @Flag(help: "Print only the one-line JSON summary.")
    var json = false

    func validate() throws {
        for (name, value) in [
            ("--subscribers", self.subscribers), ("--ws-subscribers", self.wsSubscribers), ("--events", self.events),
            ("--rate", self.rate),
        ] where value < 0 {
            throw ValidationError("\(name) must be 0 or more.")
        }
        for (name, value) in [
            ("--topics", self.topics), ("--publishers", self.publishers), ("--threads", self.threads),
            ("--connect-concurrency", self.connectConcurrency),
        ] where value < 1 {
            throw ValidationError("\(name) must be at least 1.")
        }
        guard self.wsSubscribers <= self.subscribers else {
            throw ValidationError("--ws-subscribers cannot exceed --subscribers.")
        }
        guard self.size >= 48 else { throw ValidationError("--size must be at least 48 bytes (the bench's header).") }
        _ = try self.brokerURL()
    }

    private func brokerURL() throws -> BrokerURL {
        do {
            return try BrokerURL(self.url)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func run() async throws {
        let url = try self.brokerURL()
        let configuration = BenchConfiguration(
            host: url.host, port: url.port, subscribers: self.subscribers, webSocketSubscribers: self.wsSubscribers,
            topics: self.topics, events: self.events, payloadBytes: self.size, rate: self.rate,
            publishers: self.publishers, subscribePath: self.subscribePath, webSocketPath: self.wsPath,
            publishPath: self.publishPath, bodyTemplate: self.body, contentType: self.contentType, pids: self.pid,
            connectConcurrency: self.connectConcurrency, drainTimeout: .seconds(self.drainTimeout),
            topicPrefix: self.topicPrefix ?? "bench-\(UInt32.random(in: 0...UInt32.max))", threads: self.threads,
            showProgress: !self.json)
        let report = try await BenchRunner(configuration: configuration).run()
        if !self.json { print(report.text) }
        print(report.json)
        if report.connected < self.subscribers || report.eventsPublished < self.events { throw ExitCode(2) }
    }
}
