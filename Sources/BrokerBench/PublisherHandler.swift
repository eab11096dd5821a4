import NIOCore
import NIOHTTP1

/// One keep-alive publishing connection: sends its share of the events one request at a time, paced to its share of
/// the rate, and stamps each payload with its publisher index, per-topic sequence and send time.
final class PublisherHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let index: Int
    private let configuration: BenchConfiguration
    private let done: EventLoopPromise<Void>
    private let counter: DeliveryCounter
    private var context: ChannelHandlerContext?
    /// The global event indexes this publisher sends: index, index + publishers, …
    private var nextEvent: Int
    private var sentCount = 0
    private var sequenceByTopic: [Int]
    private var startNanoseconds: UInt64 = 0
    private var failures = 0
    private let padding: [UInt8]
    private let interval: UInt64
    /// The body template split at `{data}` and `{topic}` once, and each topic's request line prefix.
    private let bodyParts: [BodyPart]
    private let uris: [String]
    private let headers: HTTPHeaders

    enum BodyPart {
        case text([UInt8])
        case data
        case topic
    }

    init(index: Int, configuration: BenchConfiguration, done: EventLoopPromise<Void>, counter: DeliveryCounter) {
        self.index = index
        self.configuration = configuration
        self.done = done
        self.counter = counter
        self.nextEvent = index
        self.sequenceByTopic = Array(repeating: 0, count: configuration.topics)
        self.padding = Array(repeating: UInt8(ascii: "x"), count: max(0, configuration.payloadBytes))
        // Each publisher sends rate / publishers events a second.
        self.interval =
            configuration.rate > 0
            ? UInt64(1_000_000_000.0 * Double(configuration.publishers) / Double(configuration.rate)) : 0
        self.bodyParts = Self.parse(configuration.bodyTemplate)
        self.uris = (0..<configuration.topics).map {
            configuration.path(configuration.publishPath, topic: configuration.topic($0))
        }
        self.headers = HTTPHeaders([("Host", configuration.host), ("Content-Type", configuration.contentType)])
    }

    static func parse(_ template: String) -> [BodyPart] {
        var parts: [BodyPart] = []
        var rest = Substring(template)
        while !rest.isEmpty {
            let data = rest.range(of: "{data}")
            let topic = rest.range(of: "{topic}")
            let next = [data, topic].compactMap { $0 }.min { $0.lowerBound < $1.lowerBound }
            guard let next else {
                parts.append(.text(Array(rest.utf8)))
                break
            }
            if next.lowerBound > rest.startIndex { parts.append(.text(Array(rest[..<next.lowerBound].utf8))) }
            parts.append(next == data ? .data : .topic)
            rest = rest[next.upperBound...]
        }
        return parts
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func start() {
        self.startNanoseconds = NIODeadline.now().uptimeNanoseconds
        self.sendNext()
    }

    private func sendNext() {
        guard let context = self.context else { return }
        guard self.nextEvent < self.configuration.events else {
            self.done.succeed()
            return
        }
        if self.interval > 0 {
            let due = self.startNanoseconds + UInt64(self.sentCount) * self.interval
            let now = NIODeadline.now().uptimeNanoseconds
            if due > now {
                let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: .nanoseconds(Int64(due - now))) { bound.value.send() }
                return
            }
        }
        self.send()
    }

    private func send() {
        guard let context = self.context else { return }
        let event = self.nextEvent
        let topicIndex = event % self.configuration.topics
        let sequence = self.sequenceByTopic[topicIndex]
        self.sequenceByTopic[topicIndex] += 1
        self.nextEvent += self.configuration.publishers
        self.sentCount += 1
        // The payload: "<publisher> <sequence> <send time ns> " padded with 'x' to the configured size.
        var payload = context.channel.allocator.buffer(capacity: self.padding.count + 48)
        payload.writeString(String(self.index))
        payload.writeInteger(UInt8(ascii: " "))
        payload.writeString(String(sequence))
        payload.writeInteger(UInt8(ascii: " "))
        payload.writeString(String(NIODeadline.now().uptimeNanoseconds))
        payload.writeInteger(UInt8(ascii: " "))
        if self.padding.count > payload.readableBytes {
            payload.writeBytes(self.padding[payload.readableBytes...])
        }
        var body = context.channel.allocator.buffer(capacity: payload.readableBytes + 64)
        for part in self.bodyParts {
            switch part {
            case .text(let bytes): body.writeBytes(bytes)
            case .data: body.writeImmutableBuffer(payload)
            case .topic: body.writeString(self.configuration.topic(topicIndex))
            }
        }
        var headers = self.headers
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: self.uris[topicIndex], headers: headers)
        context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            if head.status.code >= 300 { self.failures += 1 }
        case .body:
            break
        case .end:
            self.counter.addPublished(1, failed: self.failures)
            self.failures = 0
            self.sendNext()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.done.fail(BenchError("publisher connection closed after \(self.sentCount) events"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.done.fail(error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension PublisherHandler: Sendable {}
