/// Finds where each HTTP/1.1 response on a keep-alive connection ends, and its status code, without building strings:
/// the bench publisher's side of the conversation.
///
/// A response's body is framed by `Content-Length` or by `Transfer-Encoding: chunked` (extensions and trailers are
/// skipped); `1xx` answers are interim and skipped whole; `204` and `304` have no body. A response framed by neither
/// ends only when the connection closes, which a keep-alive publisher cannot use: that is an error, like a malformed
/// status line, a head over ``maximumHeadBytes`` or a bad size. After an error, feed the scanner no more.
struct HTTPResponseScanner {
    enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case malformedStatusLine
        case headTooLarge
        case badContentLength
        case badChunk
        /// Neither `Content-Length` nor chunked: the body would end with the connection.
        case unframedBody

        var description: String {
            switch self {
            case .malformedStatusLine: "the status line is not HTTP/1.x with a 3-digit status"
            case .headTooLarge: "the answer's head is over \(HTTPResponseScanner.maximumHeadBytes) bytes"
            case .badContentLength: "Content-Length is not one number"
            case .badChunk: "the chunked body is malformed"
            case .unframedBody:
                "the answer has neither Content-Length nor chunked encoding, so it ends only with the connection"
            }
        }
    }

    static let maximumHeadBytes = 16384

    private enum State {
        case head
        case fixedBody(remaining: Int)
        case chunkSize(ChunkSizeLine)
        case chunkSizeLF(value: Int)
        case chunkData(remaining: Int)
        case chunkDataCR
        case chunkDataLF
        /// After the last chunk: trailer lines up to an empty one. `lineBytes` counts the current line's bytes.
        case trailers(lineBytes: Int)
    }

    private var state = State.head
    /// The head so far, up to and including its blank line.
    private var head: [UInt8] = []
    /// The status of the response whose body is being read.
    private var status = 0
    /// The last bytes of the head read so far, the latest in the low byte: enough to see its end across reads.
    private var recent: UInt32 = 0

    init() {
        self.head.reserveCapacity(512)
    }

    /// Reads the next bytes of the connection.
    ///
    /// - Parameters:
    ///   - bytes: The bytes, in order after the ones fed before.
    ///   - onResponse: Called with the status code of each final (not `1xx`) response that ends in `bytes`.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, onResponse: (Int) -> Void) throws(HTTPResponseScanner.Error) {
        var index = 0
        while index < bytes.count {
            switch self.state {
            case .head:
                index = try self.readHead(bytes, from: index, onResponse: onResponse)
            case .fixedBody(let remaining):
                let count = min(remaining, bytes.count - index)
                index += count
                if count == remaining {
                    self.finish(onResponse)
                } else {
                    self.state = .fixedBody(remaining: remaining - count)
                }
            case .chunkSize(var line):
                let ended: Bool
                do {
                    (index, ended) = try line.read(bytes, from: index)
                } catch {
                    throw .badChunk
                }
                if ended {
                    guard let size = line.size else { throw .badChunk }
                    self.state = .chunkSizeLF(value: size)
                } else {
                    self.state = .chunkSize(line)
                }
            case .chunkSizeLF(let value):
                guard bytes[index] == UInt8(ascii: "\n") else { throw .badChunk }
                index += 1
                self.state = value == 0 ? .trailers(lineBytes: 0) : .chunkData(remaining: value)
            case .chunkData(let remaining):
                let count = min(remaining, bytes.count - index)
                index += count
                self.state = count == remaining ? .chunkDataCR : .chunkData(remaining: remaining - count)
            case .chunkDataCR:
                guard bytes[index] == UInt8(ascii: "\r") else { throw .badChunk }
                index += 1
                self.state = .chunkDataLF
            case .chunkDataLF:
                guard bytes[index] == UInt8(ascii: "\n") else { throw .badChunk }
                index += 1
                self.state = .chunkSize(ChunkSizeLine())
            case .trailers(let lineBytes):
                let byte = bytes[index]
                index += 1
                if byte == UInt8(ascii: "\n") {
                    if lineBytes == 0 {
                        self.finish(onResponse)
                    } else {
                        self.state = .trailers(lineBytes: 0)
                    }
                } else if byte != UInt8(ascii: "\r") {
                    guard lineBytes < Self.maximumHeadBytes else { throw .headTooLarge }
                    self.state = .trailers(lineBytes: lineBytes + 1)
                }
            }
        }
    }

    private mutating func finish(_ onResponse: (Int) -> Void) {
        self.state = .head
        onResponse(self.status)
    }

    /// Collects head bytes from `start` up to the empty line that ends the head, then reads the head; returns the
    /// index after the bytes it took. The bytes are searched in place and copied once, not byte by byte.
    private mutating func readHead(
        _ bytes: UnsafeRawBufferPointer, from start: Int, onResponse: (Int) -> Void
    ) throws(HTTPResponseScanner.Error) -> Int {
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            // The head ends at an empty line: "\n\r\n" or "\n\n". `recent` holds the bytes before this one.
            if byte == UInt8(ascii: "\n"), self.recent & 0xFF == 0x0A || self.recent & 0xFFFF == 0x0A0D {
                self.head.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
                self.recent = 0
                try self.headEnded(onResponse: onResponse)
                return index
            }
            self.recent = self.recent << 8 | UInt32(byte)
        }
        self.head.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        guard self.head.count <= Self.maximumHeadBytes else { throw .headTooLarge }
        return index
    }

    /// Reads the status line and the framing headers of the head just collected, and sets the body's state.
    private mutating func headEnded(onResponse: (Int) -> Void) throws(HTTPResponseScanner.Error) {
        defer { self.head.removeAll(keepingCapacity: true) }
        guard self.head.count <= Self.maximumHeadBytes else { throw .headTooLarge }
        let (status, framing) = try Self.readHead(self.head)
        self.status = status
        if (100..<200).contains(status) {
            // Interim: the final response follows.
            self.state = .head
            return
        }
        if status == 204 || status == 304 {
            self.finish(onResponse)
            return
        }
        switch framing {
        case .chunked:
            self.state = .chunkSize(ChunkSizeLine())
        case .length(0):
            self.finish(onResponse)
        case .length(let length):
            self.state = .fixedBody(remaining: length)
        case .none:
            throw .unframedBody
        }
    }

    private enum Framing {
        case none
        case length(Int)
        case chunked
    }

    /// `HTTP/1.x NNN …` then `name: value` lines; only `Content-Length` and `Transfer-Encoding` matter.
    private static func readHead(_ head: [UInt8]) throws(HTTPResponseScanner.Error) -> (Int, Framing) {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = head.startIndex
        while let end = head[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = head[lineStart..<end]
            lines.append(line.last == UInt8(ascii: "\r") ? line.dropLast() : line)
            lineStart = end + 1
        }
        let statusLine = lines[0]
        guard statusLine.count >= 12, statusLine.starts(with: "HTTP/1.".utf8),
            statusLine[statusLine.startIndex + 8] == UInt8(ascii: " "),
            statusLine.count == 12 || statusLine[statusLine.startIndex + 12] == UInt8(ascii: " ")
        else { throw .malformedStatusLine }
        var status = 0
        for byte in statusLine.dropFirst(9).prefix(3) {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { throw .malformedStatusLine }
            status = status * 10 + Int(byte - UInt8(ascii: "0"))
        }
        var framing = Framing.none
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = line[..<colon]
            let value = Self.trimmed(line[(colon + 1)...])
            if Self.equalsIgnoringCase(name, "transfer-encoding") {
                // The last coding decides: anything but chunked leaves the body to the connection's end.
                let last = value.split(separator: UInt8(ascii: ",")).last.map(Self.trimmed) ?? value
                guard Self.equalsIgnoringCase(last, "chunked") else { throw .unframedBody }
                framing = .chunked
            } else if Self.equalsIgnoringCase(name, "content-length") {
                if case .chunked = framing { continue }
                guard !value.isEmpty, value.count <= 18,
                    value.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
                else { throw .badContentLength }
                let length = value.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
                if case .length(let earlier) = framing, earlier != length { throw .badContentLength }
                framing = .length(length)
            }
        }
        return (status, framing)
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let first = slice.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
            slice = slice.dropFirst()
        }
        while let last = slice.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") {
            slice = slice.dropLast()
        }
        return slice
    }

    private static func equalsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { expected in
            zip(bytes, expected).allSatisfy { byte, expectedByte in
                let lowered = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
                return lowered == expectedByte
            }
        }
    }
}
