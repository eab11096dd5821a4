import BrokerClient
import EventBroker

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A blocking TCP client for tests that need exact bytes on the wire: raw requests, chunk framing, half-sent
/// requests, a reader that stops reading. Every read has a deadline, so no test can hang.
final class RawConnection {
    struct TimedOut: Error, CustomStringConvertible {
        let description: String
    }

    struct Response {
        let status: Int
        let headers: [(name: String, value: String)]
        let body: [UInt8]

        func header(_ name: String) -> String? {
            self.headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        var text: String { String(decoding: self.body, as: UTF8.self) }

        /// The body parsed as JSON.
        func json() throws -> JSONValue { try JSONParser.parse(self.body) }

        /// `error.code` of a JSON error body.
        var errorCode: String? {
            guard let value = try? self.json(), case .string(let code)? = value["error"]?["code"] else { return nil }
            return code
        }
    }

    private let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var peerClosed = false
    private var parser = SSEParser()

    init(port: Int, receiveBufferSize: Int? = nil) throws {
        #if canImport(Glibc)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        precondition(fd >= 0, "socket() failed")
        if var size = receiveBufferSize.map(Int32.init) {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(fd)
            throw TimedOut(description: "connect to 127.0.0.1:\(port) failed: errno \(errno)")
        }
        self.fd = fd
    }

    deinit {
        close(self.fd)
    }

    /// Closes the socket now (the server sees the end of the connection).
    func shutdown() {
        Glibc.shutdown(self.fd, Int32(SHUT_RDWR))
    }

    func send(_ text: String) throws {
        try self.send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes {
                Glibc.send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard written > 0 else { throw TimedOut(description: "send failed: errno \(errno)") }
            offset += written
        }
    }

    /// Reads what is available, waiting up to `timeout`. Returns false once the peer has closed.
    @discardableResult
    func readMore(timeout: Duration = .seconds(5)) throws -> Bool {
        guard !self.peerClosed else { return false }
        var poller = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(
            timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let ready = poll(&poller, 1, milliseconds)
        guard ready > 0 else { throw TimedOut(description: "no data within \(timeout)") }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 {
            self.peerClosed = true
            return false
        }
        self.buffer.append(contentsOf: chunk[0..<count])
        return true
    }

    /// Waits until the server closes the connection, discarding data; throws if it stays open past `timeout`.
    func waitForClose(timeout: Duration = .seconds(5)) throws {
        let deadline = ContinuousClock.now + timeout
        while try self.readMore(timeout: max(.milliseconds(1), deadline - ContinuousClock.now)) {
            self.buffer.removeAll()
        }
    }

    private func readLine(deadline: ContinuousClock.Instant) throws -> String {
        while true {
            if let index = self.buffer.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(self.buffer[..<index])
                self.buffer.removeFirst(index + 1)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            guard try self.readMore(timeout: max(.milliseconds(1), deadline - .now)) else {
                throw TimedOut(description: "connection closed mid-line")
            }
        }
    }

    func readBytes(_ count: Int, deadline: ContinuousClock.Instant) throws -> [UInt8] {
        while self.buffer.count < count {
            guard try self.readMore(timeout: max(.milliseconds(1), deadline - .now)) else {
                throw TimedOut(description: "connection closed with \(self.buffer.count) of \(count) bytes")
            }
        }
        let bytes = Array(self.buffer[..<count])
        self.buffer.removeFirst(count)
        return bytes
    }

    /// Reads a response head: the status and headers.
    func readHead(timeout: Duration = .seconds(5)) throws -> (status: Int, headers: [(name: String, value: String)]) {
        let deadline = ContinuousClock.now + timeout
        let statusLine = try self.readLine(deadline: deadline)
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else {
            throw TimedOut(description: "bad status line '\(statusLine)'")
        }
        var headers: [(name: String, value: String)] = []
        while true {
            let line = try self.readLine(deadline: deadline)
            if line.isEmpty { break }
            let pair = line.split(separator: ":", maxSplits: 1)
            headers.append((String(pair[0]), pair.count > 1 ? String(pair[1]).trimmingASCIIWhitespaceForTests() : ""))
        }
        return (status, headers)
    }

    /// Reads one chunk of a chunked body; nil at the last chunk.
    func readChunk(timeout: Duration = .seconds(5)) throws -> [UInt8]? {
        let deadline = ContinuousClock.now + timeout
        let sizeLine = try self.readLine(deadline: deadline)
        guard let size = Int(sizeLine, radix: 16) else { throw TimedOut(description: "bad chunk size '\(sizeLine)'") }
        if size == 0 {
            _ = try self.readLine(deadline: deadline)
            return nil
        }
        let payload = try self.readBytes(size, deadline: deadline)
        let end = try self.readBytes(2, deadline: deadline)
        guard end == [13, 10] else { throw TimedOut(description: "chunk not followed by CRLF") }
        return payload
    }

    /// Reads a whole response (Content-Length or chunked).
    func readResponse(timeout: Duration = .seconds(5)) throws -> Response {
        let deadline = ContinuousClock.now + timeout
        let head = try self.readHead(timeout: timeout)
        let response = Response(status: head.status, headers: head.headers, body: [])
        var body: [UInt8] = []
        if let length = response.header("content-length").flatMap({ Int($0) }) {
            body = try self.readBytes(length, deadline: deadline)
        } else if response.header("transfer-encoding")?.lowercased() == "chunked" {
            while let chunk = try self.readChunk(timeout: max(.milliseconds(1), deadline - .now)) { body += chunk }
        }
        return Response(status: head.status, headers: head.headers, body: body)
    }

    /// Reads SSE messages (parsed as the WHATWG spec says) until `count` have arrived.
    func readMessages(count: Int, timeout: Duration = .seconds(5)) throws -> [SSEMessage] {
        let deadline = ContinuousClock.now + timeout
        var messages: [SSEMessage] = []
        while messages.count < count {
            guard let chunk = try self.readChunk(timeout: max(.milliseconds(1), deadline - .now)) else {
                throw TimedOut(description: "stream ended after \(messages.count) of \(count) messages")
            }
            messages += self.parser.feed(chunk)
        }
        return messages
    }

    /// Reads SSE messages until the stream ends (last chunk or close).
    func readMessagesUntilEnd(timeout: Duration = .seconds(5)) throws -> (messages: [SSEMessage], retry: Int?) {
        let deadline = ContinuousClock.now + timeout
        var messages: [SSEMessage] = []
        while true {
            do {
                guard let chunk = try self.readChunk(timeout: max(.milliseconds(1), deadline - .now)) else { break }
                messages += self.parser.feed(chunk)
            } catch let error as TimedOut where self.peerClosed {
                _ = error
                break
            }
        }
        return (messages, self.parser.retry)
    }

    var heartbeatsSeen: Int { self.parser.commentCount }

    /// Sends a request and reads its response.
    func request(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = [],
        timeout: Duration = .seconds(5)
    ) throws -> Response {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        try self.send(Array(text.utf8) + body)
        return try self.readResponse(timeout: timeout)
    }

    /// Opens `GET target` as an event stream and returns the response head.
    func openStream(_ target: String, headers: [(String, String)] = []) throws -> (
        status: Int, headers: [(name: String, value: String)]
    ) {
        var text = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        try self.send(text)
        return try self.readHead()
    }
}

extension String {
    func trimmingASCIIWhitespaceForTests() -> String {
        var view = Substring(self)
        while view.first == " " || view.first == "\t" { view = view.dropFirst() }
        while view.last == " " || view.last == "\t" { view = view.dropLast() }
        return String(view)
    }
}
