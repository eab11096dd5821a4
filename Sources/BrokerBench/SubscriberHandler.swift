import NIOCore
import NIOHTTP1

/// One SSE subscriber of the bench: sends `GET`, then reads data lines without building strings.
///
/// Each event's data starts with `<publisher> <sequence> <send time, ns> `: the handler records the latency, and
/// checks that each publisher's sequence on its topic only moves forward (a step back is a duplicate or a reorder).
final class SubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let path: String
    private let host: String
    private let stats: NIOLoopBoundBox<LoopStats>
    private let connected: EventLoopPromise<Void>
    private let counter: DeliveryCounter
    private var nextSequence: [Int] = []
    /// The first bytes of the current line (enough for the header); the rest of a long line is skipped.
    private var line: [UInt8] = []
    private var lineLength = 0
    private static let headerBytes = 64

    init(path: String, host: String, stats: NIOLoopBoundBox<LoopStats>, connected: EventLoopPromise<Void>, counter: DeliveryCounter) {
        self.path = path
        self.host = host
        self.stats = stats
        self.connected = connected
        self.counter = counter
        self.line.reserveCapacity(Self.headerBytes)
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: self.host)
        headers.add(name: "Accept", value: "text/event-stream")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: self.path, headers: headers)
        context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            if head.status == .ok {
                self.stats.value.connected += 1
                self.connected.succeed()
            } else {
                self.connected.fail(BenchError("subscribe answered \(head.status.code)"))
                context.close(promise: nil)
            }
        case .body(let buffer):
            self.scan(buffer)
        case .end:
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.connected.fail(BenchError("subscriber connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.connected.fail(error)
        context.close(promise: nil)
    }

    private func scan(_ buffer: ByteBuffer) {
        let now = NIODeadline.now().uptimeNanoseconds
        var delivered = 0
        buffer.withUnsafeReadableBytes { bytes in
            for byte in bytes {
                if byte == UInt8(ascii: "\n") {
                    if self.lineEnded(now: now) { delivered += 1 }
                    self.line.removeAll(keepingCapacity: true)
                    self.lineLength = 0
                } else {
                    if self.lineLength < Self.headerBytes { self.line.append(byte) }
                    self.lineLength += 1
                }
            }
        }
        if delivered > 0 {
            let stats = self.stats.value
            stats.received += delivered
            stats.lastDeliveryNanoseconds = now
            self.counter.add(delivered)
        }
    }

    /// Parses `data: <publisher> <sequence> <sent ns> …`; true for an event line.
    private func lineEnded(now: UInt64) -> Bool {
        let prefix: [UInt8] = Array("data: ".utf8)
        guard self.line.count > prefix.count, self.line.starts(with: prefix) else { return false }
        var index = prefix.count
        func number() -> Int? {
            var value = 0
            var digits = 0
            while index < self.line.count, self.line[index] >= 48, self.line[index] <= 57 {
                value = value &* 10 &+ Int(self.line[index] - 48)
                index += 1
                digits += 1
            }
            if index < self.line.count, self.line[index] == UInt8(ascii: " ") { index += 1 }
            return digits > 0 ? value : nil
        }
        guard let publisher = number(), let sequence = number(), let sent = number() else { return false }
        let stats = self.stats.value
        stats.record(latencyNanoseconds: now &- UInt64(sent))
        if publisher >= self.nextSequence.count {
            self.nextSequence += Array(repeating: 0, count: publisher - self.nextSequence.count + 1)
        }
        if sequence < self.nextSequence[publisher] {
            stats.outOfOrder += 1
        } else {
            self.nextSequence[publisher] = sequence + 1
        }
        return true
    }
}

@available(*, unavailable)
extension SubscriberHandler: Sendable {}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
