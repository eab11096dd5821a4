import NIOCore
import NIOPosix
import Testing

/// A tiny HTTP server for tests on 127.0.0.1, port 0: for each connection in turn it reads one request (head and
/// `Content-Length` body, or the head alone), records it, writes a canned answer piece by piece (one write and flush
/// each, so the client sees it in several reads), then closes or holds the connection open.
struct CannedHTTPServer {
    /// What to do with one connection.
    struct Script: Sendable {
        /// Written one after another, each flushed on its own.
        var pieces: [[UInt8]]
        /// Keep the connection open after the pieces until the client closes it, instead of closing.
        var holdOpen: Bool
        /// How much of the request the server reads before it answers.
        var reads: Reading = .request

        /// How much of the request the server reads before it answers.
        enum Reading: Sendable {
            /// The head and its `Content-Length` body.
            case request
            /// The head alone, leaving the body unread, as a server refusing an oversized body does.
            case head
        }

        init(_ pieces: [String], holdOpen: Bool = false, reads: Reading = .request) {
            self.pieces = pieces.map { Array($0.utf8) }
            self.holdOpen = holdOpen
            self.reads = reads
        }

        /// `head`, then `body` cut into pieces of `size` bytes, wherever that falls (inside a chunk header, a CRLF
        /// or a UTF-8 sequence).
        init(head: String, body: String, pieceSize: Int, holdOpen: Bool = false) {
            let bytes = Array(body.utf8)
            self.pieces =
                [Array(head.utf8)]
                + stride(from: 0, to: bytes.count, by: pieceSize).map {
                    Array(bytes[$0..<min($0 + pieceSize, bytes.count)])
                }
            self.holdOpen = holdOpen
        }
    }

    let port: Int
    private let channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>

    static func start() async throws -> CannedHTTPServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { child in
                child.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child)
                }
            }
        let port = try #require(channel.channel.localAddress?.port)
        return CannedHTTPServer(port: port, channel: channel)
    }

    /// `http://127.0.0.1:<port><path>`.
    func url(_ path: String = "/") -> String {
        "http://127.0.0.1:\(self.port)\(path)"
    }

    /// Closes the listener without serving anything, so connecting to `port` is refused.
    func close() async throws {
        try await self.channel.channel.close()
    }

    /// Serves one connection per script, in order, then closes the listener.
    /// - Returns: Each request as received: head (with its CRLFs) and body.
    func serve(_ scripts: [Script]) async throws -> [String] {
        try await self.channel.executeThenClose { connections in
            var requests: [String] = []
            var remaining = scripts[...]
            for try await connection in connections {
                guard let script = remaining.popFirst() else { break }
                requests.append(try await Self.handle(connection, script: script))
                if remaining.isEmpty { break }
            }
            return requests
        }
    }

    private static func handle(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, script: Script) async throws
        -> String
    {
        try await connection.executeThenClose { inbound, outbound in
            var received = ""
            var iterator = inbound.makeAsyncIterator()
            while !Self.isComplete(received, headOnly: script.reads == .head), let buffer = try await iterator.next() {
                received += String(buffer: buffer)
            }
            for piece in script.pieces {
                try await outbound.write(ByteBuffer(bytes: piece))
            }
            if script.holdOpen {
                // Wait for the client to go away, ignoring how it does.
                while (try? await iterator.next()) != nil {}
            }
            return received
        }
    }

    /// Whether `request` holds a whole head and, unless `headOnly`, as many body bytes as its `Content-Length` says.
    private static func isComplete(_ request: String, headOnly: Bool) -> Bool {
        guard let headEnd = request.utf8.firstRange(of: "\r\n\r\n".utf8) else { return false }
        if headOnly { return true }
        let head = String(decoding: request.utf8[..<headEnd.lowerBound], as: UTF8.self).lowercased()
        var contentLength = 0
        for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
            contentLength = Int(line.dropFirst("content-length:".count).trimmingPrefix(" ")) ?? 0
        }
        return request.utf8[headEnd.upperBound...].count >= contentLength
    }
}

/// Runs `body`, failing with `TestTimeout` if it takes longer than `timeout`, so no network test can hang.
func withTestTimeout<Result: Sendable>(
    _ timeout: Duration = .seconds(10),
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw TestTimeout()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

struct TestTimeout: Error {}

/// A chunk of a chunked HTTP body: hex length, CRLF, payload, CRLF.
func chunk(_ payload: String) -> String {
    String(payload.utf8.count, radix: 16) + "\r\n" + payload + "\r\n"
}

/// The head of a `200 text/event-stream` chunked answer, as the broker sends it.
let eventStreamHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
    + "Transfer-Encoding: chunked\r\n\r\n"
