import EventBroker
import NIOCore

/// One keep-alive publishing connection: sends its share of the events one request at a time, paced to its share of
/// the rate, and stamps each payload with its publisher index, per-topic sequence and send time.
///
/// Like ``SubscriberHandler`` it speaks just enough HTTP/1.1 to stay cheap, so the load generator leaves the CPU to
/// the broker: each request is written into one reused buffer from bytes prepared once per topic, and the answers
/// go through an ``HTTPResponseScanner``, which finds where each ends and its status without building strings.
final class PublisherHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

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
    private let padding: [UInt8]
    private let interval: UInt64
    /// The body template split at `{data}` and `{topic}` once.
    private let bodyParts: [BodyPart]
    /// Each topic's request head up to the `Content-Length` value, and its name.
    private let heads: [[UInt8]]
    private let topicNames: [[UInt8]]
    /// Reused for every request: a request is written before its answer arrives, so the buffer is free again then.
    private var request: ByteBuffer
    private var body: ByteBuffer
    private var scanner = HTTPResponseScanner()
    /// Whether a request is waiting for its answer.
    private var awaitingResponse = false

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
        self.heads = (0..<configuration.topics).map {
            let target = configuration.path(configuration.publishPath, topic: configuration.topic($0))
            return Array(
                "POST \(target) HTTP/1.1\r\nHost: \(configuration.host)\r\nContent-Type: \(configuration.contentType)\r\n"
                    .utf8) + Array("Content-Length: ".utf8)
        }
        self.topicNames = (0..<configuration.topics).map { Array(configuration.topic($0).utf8) }
        self.request = ByteBuffer()
        self.body = ByteBuffer()
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
        // The body, with the payload "<publisher> <sequence> <send time ns> " padded with 'x' to the configured size.
        self.body.clear()
        for part in self.bodyParts {
            switch part {
            case .text(let bytes):
                self.body.writeBytes(bytes)
            case .data:
                let payloadStart = self.body.writerIndex
                self.body.writeDecimal(UInt64(self.index))
                self.body.writeInteger(UInt8(ascii: " "))
                self.body.writeDecimal(UInt64(sequence))
                self.body.writeInteger(UInt8(ascii: " "))
                self.body.writeDecimal(NIODeadline.now().uptimeNanoseconds)
                self.body.writeInteger(UInt8(ascii: " "))
                let written = self.body.writerIndex - payloadStart
                if self.padding.count > written { self.body.writeBytes(self.padding[written...]) }
            case .topic:
                self.body.writeBytes(self.topicNames[topicIndex])
            }
        }
        self.request.clear()
        self.request.writeBytes(self.heads[topicIndex])
        self.request.writeDecimal(UInt64(self.body.readableBytes))
        self.request.writeStaticString("\r\n\r\n")
        self.request.writeImmutableBuffer(self.body)
        self.awaitingResponse = true
        context.writeAndFlush(Self.wrapOutboundOut(self.request), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        var statuses = (count: 0, failures: 0)
        do {
            try buffer.withUnsafeReadableBytes { bytes throws(HTTPResponseScanner.Error) in
                try self.scanner.feed(bytes) { status in
                    statuses.count += 1
                    if status >= 300 { statuses.failures += 1 }
                }
            }
        } catch {
            self.fail(context: context, "bad publish answer: \(error)")
            return
        }
        guard statuses.count > 0 else { return }
        guard statuses.count == 1, self.awaitingResponse else {
            self.fail(context: context, "an answer came for a request that was not sent")
            return
        }
        self.awaitingResponse = false
        self.counter.addPublished(1, failed: statuses.failures)
        self.sendNext()
    }

    private func fail(context: ChannelHandlerContext, _ reason: String) {
        self.done.fail(BenchError(reason))
        context.close(promise: nil)
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
