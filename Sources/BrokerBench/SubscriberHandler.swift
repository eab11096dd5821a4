import NIOCore

/// One subscriber of the bench, over SSE or WebSocket. It speaks just enough HTTP/1.1 to stay cheap, so the load
/// generator is not the bottleneck: it writes the `GET` (an upgrade request for a WebSocket), checks the status line
/// (`200` or `101`), then hands what follows to an ``EventStreamScanner``, which decodes the SSE body's chunk framing
/// and finds its lines, or to a ``WebSocketFrameScanner``, which finds the frames; neither builds strings. A
/// WebSocket subscriber answers the broker's pings, so it is never closed as unresponsive.
///
/// Each event's data starts with `<publisher> <sequence> <send time, ns> `: the handler records the latency, and
/// checks that each publisher's sequence on its topic only moves forward (a step back is a duplicate or a reorder).
///
/// The body state is a value that `channelRead` mutates once per read: a per-byte state machine on this class's
/// properties would pay Swift's dynamic exclusivity check on every byte.
final class SubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Collecting the response head, up to its blank line.
        case head
        /// Each read goes to `scanner`, which ignores what comes after the terminating chunk.
        case body
        /// Failed and closing: reads are ignored.
        case done
    }

    /// How a bench subscriber connects.
    enum Transport: Sendable {
        case sse
        case webSocket
    }

    private let transport: Transport
    private let request: ByteBuffer
    private let stats: NIOLoopBoundBox<LoopStats>
    private let connected: EventLoopPromise<Void>
    private let counter: DeliveryCounter
    private var state = State.head
    private var head: [UInt8] = []
    /// Replaced when the head ends, by one that knows whether the body is chunked.
    private var scanner = EventStreamScanner(chunked: false)
    private var frameScanner = WebSocketFrameScanner()
    private var nextSequence: [Int] = []
    private static let headTerminator: [UInt8] = Array("\r\n\r\n".utf8)
    private static let maximumHeadBytes = 16384

    /// A masked, empty pong frame.
    private static let pong = ByteBuffer(bytes: [0x8A, 0x80, 0x11, 0x22, 0x33, 0x44])

    init(
        transport: Transport = .sse, path: String, host: String, stats: NIOLoopBoundBox<LoopStats>,
        connected: EventLoopPromise<Void>, counter: DeliveryCounter
    ) {
        self.transport = transport
        switch transport {
        case .sse:
            self.request = ByteBuffer(
                string: "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nAccept: text/event-stream\r\n\r\n")
        case .webSocket:
            let key = (0..<16).map { _ in UInt8.random(in: 0...255) }
            self.request = ByteBuffer(
                string:
                    "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: \(Self.base64(key))\r\n\r\n")
        }
        self.stats = stats
        self.connected = connected
        self.counter = counter
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(Self.wrapOutboundOut(self.request), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { bytes in
            var body = bytes
            if case .head = self.state {
                guard let afterHead = self.readHead(bytes, context: context) else { return }
                body = afterHead
            }
            guard case .body = self.state, !body.isEmpty else { return }
            self.readBody(body, context: context)
        }
    }

    /// Collects head bytes up to the blank line that ends the head; returns the bytes after it, or nil while the
    /// head goes on or when it failed. Once per connection, so byte by byte.
    private func readHead(_ bytes: UnsafeRawBufferPointer, context: ChannelHandlerContext) -> UnsafeRawBufferPointer? {
        for index in bytes.indices {
            self.head.append(bytes[index])
            if self.head.count >= 4, self.head.suffix(4).elementsEqual(Self.headTerminator) {
                self.headEnded(context: context)
                return UnsafeRawBufferPointer(rebasing: bytes[(index + 1)...])
            } else if self.head.count > Self.maximumHeadBytes {
                self.fail(context: context, "response head too large")
                return nil
            }
        }
        return nil
    }

    private func headEnded(context: ChannelHandlerContext) {
        let text = String(decoding: self.head, as: UTF8.self)
        self.head = []
        let statusLine = text.prefix { $0 != "\r" }
        let parts = statusLine.split(separator: " ")
        let expected = self.transport == .sse ? "200" : "101"
        guard parts.count >= 2, parts[1] == Substring(expected) else {
            self.fail(context: context, "subscribe answered '\(statusLine)'")
            return
        }
        let isChunked = text.lowercased().contains("transfer-encoding: chunked")
        self.scanner = EventStreamScanner(chunked: isChunked)
        self.state = .body
        self.stats.value.connected += 1
        self.connected.succeed()
    }

    /// Feeds one read's body bytes to the scanner, in one call, and records the events among the lines.
    private func readBody(_ bytes: UnsafeRawBufferPointer, context: ChannelHandlerContext) {
        let now = NIODeadline.now().uptimeNanoseconds
        let stats = self.stats.value
        var delivered = 0
        switch self.transport {
        case .sse:
            do {
                try self.scanner.feed(bytes) { line in
                    guard let event = EventStreamScanner.parseDataLine(line) else { return }
                    self.record(event, now: now, stats: stats)
                    delivered += 1
                }
            } catch {
                switch error {
                case .badChunkSize: self.fail(context: context, "bad chunk size")
                }
            }
        case .webSocket:
            var pings = 0
            do {
                try self.frameScanner.feed(bytes) { opcode, payload in
                    if opcode == 0x9 { pings += 1 }
                    guard opcode == 0x1, let event = WebSocketFrameScanner.parseEventMessage(payload) else { return }
                    self.record(event, now: now, stats: stats)
                    delivered += 1
                }
            } catch {
                switch error {
                case .maskedServerFrame: self.fail(context: context, "masked server frame")
                }
            }
            for _ in 0..<pings { context.writeAndFlush(Self.wrapOutboundOut(Self.pong), promise: nil) }
        }
        if delivered > 0 {
            stats.received += delivered
            stats.lastDeliveryNanoseconds = now
            self.counter.add(delivered)
        }
    }

    /// Records one event's latency, and checks that its publisher's sequence moved forward.
    private func record(_ event: EventStreamScanner.DataLine, now: UInt64, stats: LoopStats) {
        stats.record(latencyNanoseconds: now &- event.sentNanoseconds)
        if event.publisher >= self.nextSequence.count {
            self.nextSequence += Array(repeating: 0, count: event.publisher - self.nextSequence.count + 1)
        }
        if event.sequence < self.nextSequence[event.publisher] {
            stats.outOfOrder += 1
        } else {
            self.nextSequence[event.publisher] = event.sequence + 1
        }
    }

    private static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        var text = ""
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            let value = chunk.enumerated().reduce(0) { $0 | Int($1.element) << (16 - 8 * $1.offset) }
            for position in 0..<4 {
                text.append(position <= chunk.count ? alphabet[(value >> (18 - 6 * position)) & 0x3F] : "=")
            }
            index += 3
        }
        return text
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
}

@available(*, unavailable)
extension SubscriberHandler: Sendable {}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
