import NIOCore
import NIOPosix
import Testing

@testable import BrokerBench

/// The bench's publishers against canned answers, the kinds another broker may send back: they must count each
/// publish once, whatever the framing, and stop with a clear error on an answer they cannot frame.
@Suite struct PublisherAnswerTests {
    @Test func countsChunkedAnswersAfterAnInterimOne() async throws {
        let answer =
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "4;n=1\r\nok\r\n\r\n0\r\nX-Queued: 1\r\n\r\n"
        let report = try await Self.publish(events: 30, answeredWith: answer)
        #expect(report.eventsPublished == 30)
        #expect(report.publishFailures == 0)
    }

    @Test func countsRefusalsAsFailures() async throws {
        let report = try await Self.publish(
            events: 12, answeredWith: "HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy")
        #expect(report.eventsPublished == 12)
        #expect(report.publishFailures == 12)
    }

    @Test func stopsWithAClearErrorOnAnUnframedAnswer() async throws {
        await #expect {
            _ = try await Self.publish(events: 5, answeredWith: "HTTP/1.1 200 OK\r\n\r\nok")
        } throws: { error in
            "\(error)".contains("neither Content-Length nor chunked encoding")
        }
    }

    /// Runs the bench with no subscribers against a server that gives every request `answer`.
    private static func publish(events: Int, answeredWith answer: String) async throws -> BenchReport {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Answerer(answer: answer))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let configuration = BenchConfiguration(
            port: port, subscribers: 0, events: events, publishers: 3, drainTimeout: .seconds(1), showProgress: false)
        do {
            let report = try await BenchRunner(configuration: configuration).run()
            try await server.close()
            return report
        } catch {
            try await server.close()
            throw error
        }
    }

    /// Answers each request it reads (each starts with `POST `) with the same bytes.
    private final class Answerer: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        private let answer: ByteBuffer
        /// The last bytes read, so a `POST ` split between reads is still seen.
        private var tail: [UInt8] = []

        init(answer: String) {
            self.answer = ByteBuffer(string: answer)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = self.tail + Array(buffer: Self.unwrapInboundIn(data))
            let marker = Array("POST ".utf8)
            var requests = 0
            var index = 0
            while index + marker.count <= bytes.count {
                if bytes[index..<(index + marker.count)].elementsEqual(marker) {
                    requests += 1
                    index += marker.count
                } else {
                    index += 1
                }
            }
            self.tail = Array(bytes.suffix(marker.count - 1))
            for _ in 0..<requests { context.write(Self.wrapOutboundOut(self.answer), promise: nil) }
            context.flush()
        }
    }
}
