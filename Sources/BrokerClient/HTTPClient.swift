import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A minimal HTTP/1.1 client for talking to a broker: one request per fresh connection, `Connection: close`.
///
/// It exists so the CLI and the tests need no HTTP library. Each call connects with a `ClientBootstrap` on
/// `MultiThreadedEventLoopGroup.singleton`, runs the NIOHTTP1 client pipeline, sends the request and collects
/// the whole response as text. Only `http://` is supported (see ``BrokerURL``).
///
/// ```
/// POST /api/events/publish HTTP/1.1      ← method, url.requestTarget
/// Host: 127.0.0.1:8080                   ← added unless given
/// Content-Length: 42                     ← added when there is a body
/// Connection: close
///
/// {"topics":["a"],"data":"hello"}
/// ```
/// Every status is returned, not thrown: a `4xx` answer is a response like any other. What throws is failing
/// to connect, the timeout (``BrokerClientError/Code/timeout``), a connection closed before the response
/// ended, and a body over 16 MiB. An answer the server gives before it has read the whole request body (a refusal
/// by `Content-Length`) is returned even though sending the rest of the body then fails.
public enum BrokerHTTPClient {
    /// The most response body bytes ``request(method:url:headers:body:timeout:)`` collects.
    static let maximumBodyBytes = 16 * 1024 * 1024

    /// Sends one request and returns the complete response.
    /// - Parameters:
    ///   - method: The request method, such as `"GET"` or `"POST"`.
    ///   - url: Where to send it.
    ///   - headers: Extra request headers, in order. `Host`, `Content-Length` and `Connection` are added unless given.
    ///   - body: The request body as UTF-8 text, or `nil` for none.
    ///   - timeout: The most the whole exchange (connecting included) may take.
    /// - Returns: The status code, the response headers in order and the body decoded as UTF-8.
    public static func request(
        method: String = "GET",
        url: BrokerURL,
        headers: [(String, String)] = [],
        body: String? = nil,
        timeout: Duration = .seconds(30)
    ) async throws -> (status: Int, headers: [(String, String)], body: String) {
        let head = Self.makeRequestHead(method: method, url: url, headers: headers, bodyLength: body?.utf8.count)
        return try await Self.withTimeout(timeout) {
            let channel = try await Self.connect(to: url, connectTimeout: timeout, idleTimeout: nil)
            return try await channel.executeThenClose { inbound, outbound in
                // The whole request goes out in one write: the server may answer and close as soon as it has the
                // body, before a separate `.end` write got to the channel. A server may also answer before reading
                // the body (a `413`) and close; then writing fails, and the answer already read is what counts.
                var request: [HTTPClientRequestPart] = [.head(head)]
                if let body {
                    request.append(.body(.byteBuffer(ByteBuffer(string: body))))
                }
                request.append(.end(nil))
                var writeFailure: (any Error)?
                do {
                    try await outbound.write(contentsOf: request)
                } catch {
                    writeFailure = error
                }

                var responseHead: HTTPResponseHead?
                var responseBody = ByteBuffer()
                for try await part in inbound {
                    switch part {
                    case .head(let head):
                        responseHead = head
                    case .body(var chunk):
                        guard responseBody.readableBytes + chunk.readableBytes <= Self.maximumBodyBytes else {
                            throw BrokerClientError(
                                .responseTooLarge,
                                "The response body from \(url) is larger than \(Self.maximumBodyBytes) bytes",
                                status: responseHead.map { Int($0.status.code) }
                            )
                        }
                        responseBody.writeBuffer(&chunk)
                    case .end:
                        guard let responseHead else { break }
                        return (
                            status: Int(responseHead.status.code),
                            headers: responseHead.headers.map { ($0.name, $0.value) },
                            body: String(buffer: responseBody)
                        )
                    }
                }
                if let writeFailure, responseHead == nil { throw writeFailure }
                throw BrokerClientError(
                    .connectionClosed,
                    "\(url) closed the connection before the response was complete",
                    status: responseHead.map { Int($0.status.code) }
                )
            }
        }
    }

    /// Parses `url` and sends one request; see ``request(method:url:headers:body:timeout:)``.
    /// - Throws: ``BrokerURLError`` if `url` is not an `http://` URL, and whatever the request throws.
    public static func request(
        method: String = "GET",
        url: String,
        headers: [(String, String)] = [],
        body: String? = nil,
        timeout: Duration = .seconds(30)
    ) async throws -> (status: Int, headers: [(String, String)], body: String) {
        try await Self.request(method: method, url: BrokerURL(url), headers: headers, body: body, timeout: timeout)
    }

    // MARK: Shared with SSEClient

    /// Connects to `url` and returns the channel with the HTTP client handlers installed, ready for
    /// `executeThenClose`. With an `idleTimeout`, the channel fails with ``BrokerClientError/Code/idleTimeout``
    /// and closes when nothing was read for that long.
    static func connect(
        to url: BrokerURL,
        connectTimeout: Duration,
        idleTimeout: Duration?
    ) async throws -> NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart> {
        do {
            return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(TimeAmount(connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: url.host, port: url.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let idleTimeout {
                            try channel.pipeline.syncOperations.addHandlers(
                                IdleStateHandler(readTimeout: TimeAmount(idleTimeout)),
                                ReadTimeoutHandler(url: url, idleTimeout: idleTimeout)
                            )
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                            wrappingChannelSynchronously: channel
                        )
                    }
                }
        } catch let error as CancellationError {
            throw error
        } catch {
            throw BrokerClientError(
                .connectionFailed,
                "Could not connect to \(url.hostHeader): \(Self.describeConnectFailure(error, timeout: connectTimeout))"
            )
        }
    }

    /// A short reason for a failed connect, such as `Connection refused`, instead of NIO's nested descriptions.
    static func describeConnectFailure(_ error: any Error, timeout: Duration) -> String {
        switch error {
        case let error as NIOConnectionError:
            if let failure = error.connectionErrors.first {
                return Self.describeConnectFailure(failure.error, timeout: timeout)
            }
            if error.dnsAError != nil || error.dnsAAAAError != nil {
                return "the host name could not be resolved"
            }
            return "\(error)"
        case let error as IOError:
            return String(cString: strerror(error.errnoCode))
        case ChannelError.connectTimeout:
            return "no answer within \(timeout)"
        default:
            return "\(error)"
        }
    }

    /// The request head, with `Host`, `Content-Length` (when there is a body) and `Connection: close` added
    /// unless `headers` has them.
    static func makeRequestHead(
        method: String,
        url: BrokerURL,
        headers: [(String, String)],
        bodyLength: Int?
    ) -> HTTPRequestHead {
        var httpHeaders = HTTPHeaders(headers)
        if !httpHeaders.contains(name: "Host") {
            httpHeaders.add(name: "Host", value: url.hostHeader)
        }
        if let bodyLength, !httpHeaders.contains(name: "Content-Length"),
            !httpHeaders.contains(name: "Transfer-Encoding")
        {
            httpHeaders.add(name: "Content-Length", value: String(bodyLength))
        }
        if !httpHeaders.contains(name: "Connection") {
            httpHeaders.add(name: "Connection", value: "close")
        }
        return HTTPRequestHead(
            version: .http1_1,
            method: HTTPMethod(rawValue: method.uppercased()),
            uri: url.requestTarget,
            headers: httpHeaders
        )
    }

    /// Runs `operation`, cancelling it and throwing ``BrokerClientError/Code/timeout`` if it takes longer than
    /// `timeout`.
    static func withTimeout<Result: Sendable>(
        _ timeout: Duration,
        _ operation: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        try await withThrowingTaskGroup(of: Result.self) { group in
            group.addTask {
                try await operation()
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw BrokerClientError(.timeout, "The request did not complete within \(timeout)")
            }
            defer { group.cancelAll() }
            guard let result = try await group.next() else {
                throw CancellationError()
            }
            return result
        }
    }
}
