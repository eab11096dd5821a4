import NIOCore

/// One SSE subscriber of the bench. It speaks just enough HTTP/1.1 to stay cheap, so the load generator is not the
/// bottleneck: it writes the `GET`, checks the status line, then decodes the body's chunk framing (or takes the
/// body as it comes when it is not chunked) and scans data lines without building strings.
///
/// Each event's data starts with `<publisher> <sequence> <send time, ns> `: the handler records the latency, and
/// checks that each publisher's sequence on its topic only moves forward (a step back is a duplicate or a reorder).
final class SubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case head
        /// Reading a chunk size; after `;` an extension, ignored up to the line's end.
        case chunkSize(value: Int, sawDigit: Bool, inExtension: Bool)
        case chunkSizeLF(value: Int)
        case chunkData(remaining: Int)
        case chunkDataCR
        case chunkDataLF
        case plainBody
        case done
    }

    private let request: ByteBuffer
    private let stats: NIOLoopBoundBox<LoopStats>
    private let connected: EventLoopPromise<Void>
    private let counter: DeliveryCounter
    private var state = State.head
    private var head: [UInt8] = []
    private var nextSequence: [Int] = []
    /// The first bytes of the current line (enough for the header); the rest of a long line is skipped.
    private var line: [UInt8] = []
    private var lineLength = 0
    private static let headerBytes = 64
    private static let dataPrefix: [UInt8] = Array("data: ".utf8)

    init(
        path: String, host: String, stats: NIOLoopBoundBox<LoopStats>, connected: EventLoopPromise<Void>,
        counter: DeliveryCounter
    ) {
        self.request = ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nAccept: text/event-stream\r\n\r\n")
        self.stats = stats
        self.connected = connected
        self.counter = counter
        self.line.reserveCapacity(Self.headerBytes)
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(Self.wrapOutboundOut(self.request), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        let now = NIODeadline.now().uptimeNanoseconds
        var delivered = 0
        buffer.withUnsafeReadableBytes { bytes in
            for byte in bytes {
                switch self.state {
                case .head:
                    self.head.append(byte)
                    if self.head.count >= 4, self.head.suffix(4).elementsEqual([13, 10, 13, 10]) {
                        self.headEnded(context: context)
                    } else if self.head.count > 16384 {
                        self.fail(context: context, "response head too large")
                    }
                case .chunkSize(let value, let sawDigit, let inExtension):
                    if byte == 13 {
                        self.state = sawDigit ? .chunkSizeLF(value: value) : .done
                    } else if inExtension {
                        break
                    } else if byte == UInt8(ascii: ";") {
                        self.state = .chunkSize(value: value, sawDigit: sawDigit, inExtension: true)
                    } else if let digit = Self.hexValue(byte) {
                        self.state = .chunkSize(value: value &* 16 &+ digit, sawDigit: true, inExtension: false)
                    } else {
                        self.fail(context: context, "bad chunk size")
                    }
                case .chunkSizeLF(let value):
                    self.state = value == 0 ? .done : .chunkData(remaining: value)
                case .chunkData(let remaining):
                    if self.scan(byte, now: now) { delivered += 1 }
                    self.state = remaining == 1 ? .chunkDataCR : .chunkData(remaining: remaining - 1)
                case .chunkDataCR:
                    self.state = .chunkDataLF
                case .chunkDataLF:
                    self.state = .chunkSize(value: 0, sawDigit: false, inExtension: false)
                case .plainBody:
                    if self.scan(byte, now: now) { delivered += 1 }
                case .done:
                    break
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

    private func headEnded(context: ChannelHandlerContext) {
        let text = String(decoding: self.head, as: UTF8.self)
        self.head = []
        let statusLine = text.prefix { $0 != "\r" }
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[1] == "200" else {
            self.fail(context: context, "subscribe answered '\(statusLine)'")
            return
        }
        let isChunked = text.lowercased().contains("transfer-encoding: chunked")
        self.state = isChunked ? .chunkSize(value: 0, sawDigit: false, inExtension: false) : .plainBody
        self.stats.value.connected += 1
        self.connected.succeed()
    }

    private func fail(context: ChannelHandlerContext, _ reason: String) {
        self.state = .done
        self.connected.fail(BenchError(reason))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.connected.fail(BenchError("subscriber connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.connected.fail(error)
        context.close(promise: nil)
    }

    /// Feeds one body byte to the line scanner; true when it ended an event's data line.
    @inline(__always)
    private func scan(_ byte: UInt8, now: UInt64) -> Bool {
        if byte == UInt8(ascii: "\n") {
            let isEvent = self.lineEnded(now: now)
            self.line.removeAll(keepingCapacity: true)
            self.lineLength = 0
            return isEvent
        }
        if self.lineLength < Self.headerBytes { self.line.append(byte) }
        self.lineLength += 1
        return false
    }

    /// Parses `data: <publisher> <sequence> <sent ns> …`; true for an event line.
    private func lineEnded(now: UInt64) -> Bool {
        guard self.line.count > Self.dataPrefix.count, self.line.starts(with: Self.dataPrefix) else { return false }
        var index = Self.dataPrefix.count
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

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}

@available(*, unavailable)
extension SubscriberHandler: Sendable {}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
