import NIOCore
import NIOPosix

/// A reference point for the publish benchmark: the least an HTTP/1.1 server on SwiftNIO can do per request.
///
/// It finds where each request ends (its empty line, then its `Content-Length` body) and answers every one with the
/// same canned `200` JSON, the size of a publish's answer: no parsing, routing, bus or history. What
/// `broker-cli bench` measures against it is NIO's and the kernel's share of a publish on this machine; the
/// difference to the broker is the broker's own work.
///
/// ```
/// swift run -c release bench-floor 18090 2      # port, event loops
/// broker-cli bench --url http://127.0.0.1:18090 --publish-path '/pub/{topic}' --subscribers 0 --events 20000 ...
/// ```
@main
struct BenchFloor {
    static func main() throws {
        let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
        let port = arguments.first ?? 18090
        let threads = arguments.dropFirst().first ?? System.coreCount
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(CannedAnswerHandler())
                }
            }
            .bind(host: "127.0.0.1", port: port).wait()
        print("bench-floor listening on 127.0.0.1:\(channel.localAddress?.port ?? port) with \(threads) loops")
        try channel.closeFuture.wait()
    }
}

/// Answers every complete request on the connection with ``answer``, flushing once per read.
final class CannedAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let answer: ByteBuffer = {
        let body = #"{"id":"1796074707034911","topics":["bench-topic-1"],"subscribers":0}"#
        return ByteBuffer(
            string: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
                + body)
    }()

    private var pending: ByteBuffer?
    /// `\r\ncontent-length:` with every byte ORed with 0x20, as each received byte is before it is compared: that
    /// lowercases letters (CR and LF then compare as `-` and `*`, exact enough for a bench's own requests).
    private static let contentLengthKey: [UInt8] = Array("\r\ncontent-length:".utf8).map { $0 | 0x20 }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = Self.unwrapInboundIn(data)
        if var pending = self.pending {
            self.pending = nil
            pending.writeBuffer(&bytes)
            bytes = pending
        }
        var answered = false
        while let length = bytes.withUnsafeReadableBytes(Self.requestLength) {
            bytes.moveReaderIndex(forwardBy: length)
            context.write(Self.wrapOutboundOut(Self.answer), promise: nil)
            answered = true
        }
        if bytes.readableBytes > 0 { self.pending = bytes }
        if answered { context.flush() }
    }

    /// The length of the first request in `bytes` (its head through the empty line, plus its `Content-Length`), or
    /// nil while it is incomplete.
    static func requestLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var headEnd = -1
        var index = 0
        while index + 3 < bytes.count {
            if bytes[index] == 0x0D && bytes[index + 1] == 0x0A && bytes[index + 2] == 0x0D && bytes[index + 3] == 0x0A
            {
                headEnd = index + 4
                break
            }
            index += 1
        }
        guard headEnd >= 0 else { return nil }
        // The header's name, matched without case by plain byte loops: this is the floor, it must cost next to nothing.
        let key = Self.contentLengthKey
        var bodyLength = 0
        var start = 0
        search: while start + key.count < headEnd {
            var matched = 0
            while matched < key.count, bytes[start + matched] | 0x20 == key[matched] { matched += 1 }
            if matched == key.count {
                var digit = start + key.count
                while digit < headEnd, bytes[digit] == 0x20 { digit += 1 }
                while digit < headEnd, bytes[digit] >= 0x30, bytes[digit] <= 0x39 {
                    bodyLength = bodyLength * 10 + Int(bytes[digit] - 0x30)
                    digit += 1
                }
                break search
            }
            start += 1
        }
        return headEnd + bodyLength <= bytes.count ? headEnd + bodyLength : nil
    }
}
