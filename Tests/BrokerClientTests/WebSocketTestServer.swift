import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Testing

/// A WebSocket server for tests on 127.0.0.1, port 0, built from NIO's `NIOWebSocketServerUpgrader` and
/// `HTTPServerUpgradeHandler`: it upgrades every `GET`, then runs one script per connection, in turn, against the
/// upgraded connection's frames.
struct WebSocketTestServer {
    /// One upgraded connection, as a script sees it: the upgrade request's target, and frames in and out.
    final class Peer {
        /// The request target of the upgrade request, such as `/api/ws?topic=a`.
        let requestTarget: String
        private var inbound: NIOAsyncChannelInboundStream<WebSocketFrame>.AsyncIterator
        private let outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>

        fileprivate init(
            requestTarget: String,
            inbound: NIOAsyncChannelInboundStream<WebSocketFrame>,
            outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>
        ) {
            self.requestTarget = requestTarget
            self.inbound = inbound.makeAsyncIterator()
            self.outbound = outbound
        }

        /// Sends an unmasked frame, as a server does.
        func send(_ opcode: WebSocketOpcode, _ payload: String, fin: Bool = true) async throws {
            try await self.outbound.write(WebSocketFrame(fin: fin, opcode: opcode, data: ByteBuffer(string: payload)))
        }

        /// Sends a close frame with `code` and `reason`.
        func sendClose(code: UInt16, reason: String) async throws {
            var payload = ByteBuffer()
            payload.writeInteger(code)
            payload.writeString(reason)
            try await self.outbound.write(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload))
        }

        /// The next frame from the client, or `nil` once it closed the connection.
        func nextFrame() async throws -> WebSocketFrame? {
            try await self.inbound.next()
        }

        /// Reads frames until one with `opcode`, failing the test on others or on the end of the connection.
        func expectFrame(_ opcode: WebSocketOpcode) async throws -> WebSocketFrame {
            while let frame = try await self.nextFrame() {
                if frame.opcode == opcode {
                    return frame
                }
                Issue.record("Expected a \(opcode) frame, got \(frame)")
            }
            throw ConnectionEnded()
        }
    }

    struct ConnectionEnded: Error {}

    /// What a connection runs; it returns notes for the test to check.
    typealias Script = @Sendable (Peer) async throws -> [String]

    /// The upgraded channel of one connection and its upgrade request's target.
    private struct Upgraded: Sendable {
        var requestTarget: String
        var frames: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>
    }

    let port: Int
    private let channel: NIOAsyncChannel<EventLoopFuture<Upgraded>, Never>

    static func start() async throws -> WebSocketTestServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { child in
                child.eventLoop.makeCompletedFuture {
                    let upgraded = child.eventLoop.makePromise(of: Upgraded.self)
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: 1 << 16,
                        automaticErrorHandling: true,
                        shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
                        upgradePipelineHandler: { channel, head in
                            channel.eventLoop.makeCompletedFuture {
                                let frames = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(
                                    wrappingChannelSynchronously: channel
                                )
                                upgraded.succeed(Upgraded(requestTarget: head.uri, frames: frames))
                            }
                        }
                    )
                    try child.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
                    )
                    child.closeFuture.whenComplete { _ in upgraded.fail(ConnectionEnded()) }
                    return upgraded.futureResult
                }
            }
        let port = try #require(channel.channel.localAddress?.port)
        return WebSocketTestServer(port: port, channel: channel)
    }

    /// Upgrades one connection per script, runs the scripts in order, then closes the listener.
    /// - Returns: For each connection, the upgrade request's target and the script's notes.
    func serve(_ scripts: [Script]) async throws -> [(requestTarget: String, notes: [String])] {
        try await self.channel.executeThenClose { connections in
            var results: [(requestTarget: String, notes: [String])] = []
            var remaining = scripts[...]
            for try await connection in connections {
                guard let script = remaining.popFirst() else { break }
                let upgraded = try await connection.get()
                let notes = try await upgraded.frames.executeThenClose { inbound, outbound in
                    try await script(Peer(requestTarget: upgraded.requestTarget, inbound: inbound, outbound: outbound))
                }
                results.append((upgraded.requestTarget, notes))
                if remaining.isEmpty { break }
            }
            return results
        }
    }
}
