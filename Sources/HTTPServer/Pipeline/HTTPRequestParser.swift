import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads HTTP/1.1 requests (RFC 9112) straight from the receive buffer, one part at a time: a head, the body as
/// slices of the received bytes (no copy), then the end.
///
/// It reads what the broker serves and refuses the rest, strictly, so that no two readers of one byte stream can
/// disagree on where a request ends:
/// - lines end in CRLF; a bare CR or LF, a folded header line, a space before a header's colon, or a control
///   character in a target or a header value is an error;
/// - only `HTTP/1.0` and `HTTP/1.1`;
/// - a body is framed by `Transfer-Encoding: chunked` or by `Content-Length`, never both; any other transfer coding,
///   an invalid length or differing lengths are errors;
/// - the request line is bounded by ``Limits/maxRequestLineBytes``, the header section by ``Limits/maxHeaderBytes``
///   and ``Limits/maxHeaderCount`` (``ParseError/headTooLarge``), chunk-size lines and trailers likewise.
///
/// After an error the parser stays failed: the connection must close. A value type with no allocation of its own;
/// the head's strings and headers are the only ones a request costs.
struct HTTPRequestParser {
    struct Limits {
        var maxRequestLineBytes: Int
        var maxHeaderBytes: Int
        var maxHeaderCount: Int
    }

    enum ParseError: Error, Equatable {
        /// The request line or the header section is over its limit (answered `431`).
        case headTooLarge
        /// Anything else that is not a valid request (answered `400`); the text says what.
        case invalid(String)
    }

    private enum State {
        /// Waiting for a whole head; `scanned` bytes of it were already searched for its end.
        case head(scanned: Int)
        /// The head went out; the end follows (a request without a body).
        case endOfMessage
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytes: Int)
        case failed
    }

    /// The longest chunk-size line (with its extensions) and the most trailer bytes read before the request is refused.
    static let maxChunkLineBytes = 1024

    let limits: Limits
    private var state = State.head(scanned: 0)
    /// The `Content-Length` of the request whose head was read last; nil when it gave none (or is chunked).
    private(set) var contentLength: Int?
    /// Whether the client of the request whose head was read last holds its body back until it hears `100 Continue`
    /// or a final answer: an HTTP/1.1 request with a body whose first `Expect` is `100-continue` (RFC 9110, 10.1.1).
    private(set) var waitsForContinue = false

    init(limits: Limits) {
        self.limits = limits
    }

    /// The end of a request without a body, which needs no bytes; nil if that is not what comes next.
    mutating func pendingEnd() -> HTTPServerRequestPart? {
        guard case .endOfMessage = self.state else { return nil }
        self.state = .head(scanned: 0)
        return .end(nil)
    }

    /// The next part of the request in `buffer`, consuming its bytes; nil when more bytes are needed. Body parts are
    /// slices of `buffer`.
    mutating func next(_ buffer: inout ByteBuffer) throws(ParseError) -> HTTPServerRequestPart? {
        do {
            return try self.step(&buffer)
        } catch {
            self.state = .failed
            throw error
        }
    }

    private mutating func step(_ buffer: inout ByteBuffer) throws(ParseError) -> HTTPServerRequestPart? {
        switch self.state {
        case .failed:
            throw .invalid("the connection already failed")
        case .head(var scanned):
            // Empty lines before a request line are skipped (RFC 9112, section 2.2).
            while scanned == 0, buffer.readableBytes >= 2,
                buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A
            {
                buffer.moveReaderIndex(forwardBy: 2)
            }
            scanned = min(scanned, buffer.readableBytes)
            guard let headLength = try self.findEndOfHead(buffer, scanned: scanned) else { return nil }
            let limits = self.limits
            let (head, framing, expectsContinue) = try buffer.withUnsafeReadableBytes { bytes in
                Result { () throws(ParseError) in try Self.parseHead(bytes[..<headLength], limits: limits) }
            }.get()
            buffer.moveReaderIndex(forwardBy: headLength)
            self.contentLength = nil
            switch framing {
            case .none: self.state = .endOfMessage
            case .length(let length):
                self.contentLength = length
                self.state = length == 0 ? .endOfMessage : .fixedBody(remaining: length)
            case .chunked: self.state = .chunkSize
            }
            self.waitsForContinue =
                expectsContinue && head.version.minor >= 1 && (framing == .chunked || (self.contentLength ?? 0) > 0)
            return .head(head)
        case .endOfMessage:
            self.state = .head(scanned: 0)
            return .end(nil)
        case .fixedBody(let remaining):
            guard let (slice, left) = Self.bodySlice(of: &buffer, remaining: remaining) else { return nil }
            self.state = left == 0 ? .endOfMessage : .fixedBody(remaining: left)
            return .body(slice)
        case .chunkSize:
            guard let line = try Self.line(in: buffer, limit: Self.maxChunkLineBytes, what: "chunk size") else {
                return nil
            }
            let size = try buffer.withUnsafeReadableBytes { bytes in
                Result { () throws(ParseError) in try Self.chunkSize(bytes[..<line.content]) }
            }.get()
            buffer.moveReaderIndex(forwardBy: line.total)
            self.state = size == 0 ? .trailers(bytes: 0) : .chunkData(remaining: size)
            return try self.step(&buffer)
        case .chunkData(let remaining):
            guard let (slice, left) = Self.bodySlice(of: &buffer, remaining: remaining) else { return nil }
            self.state = left == 0 ? .chunkDataEnd : .chunkData(remaining: left)
            return .body(slice)
        case .chunkDataEnd:
            guard buffer.readableBytes >= 2 else { return nil }
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
                throw .invalid("a chunk does not end with CRLF")
            }
            self.state = .chunkSize
            return try self.step(&buffer)
        case .trailers(let bytes):
            // Trailer fields are read and ignored: nothing the broker does depends on them.
            guard let line = try Self.line(in: buffer, limit: self.limits.maxHeaderBytes - bytes, what: "trailer")
            else { return nil }
            buffer.moveReaderIndex(forwardBy: line.total)
            if line.content == 0 {
                self.state = .head(scanned: 0)
                return .end(nil)
            }
            self.state = .trailers(bytes: bytes + line.total)
            return try self.step(&buffer)
        }
    }

    /// As much of the `remaining` body bytes as `buffer` holds, as a slice, and how many are still to come; nil when
    /// it holds none.
    private static func bodySlice(of buffer: inout ByteBuffer, remaining: Int) -> (ByteBuffer, left: Int)? {
        guard buffer.readableBytes > 0 else { return nil }
        let count = min(remaining, buffer.readableBytes)
        return (buffer.readSlice(length: count)!, remaining - count)
    }

    // MARK: The head

    /// The length of the head at the front of `buffer` (through its empty line), or nil while it is incomplete.
    /// Where the reads end never changes the outcome: a head whose end is not within the limit is refused whether
    /// it came whole or in pieces.
    private mutating func findEndOfHead(_ buffer: ByteBuffer, scanned: Int) throws(ParseError) -> Int? {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        // A lone CR may be the start of an empty line before the request, skipped once its LF is here.
        if first == 0x0D && buffer.readableBytes == 1 { return nil }
        // A head that starts with a byte no method can start with is refused at once, not after a timeout.
        guard first.isHTTPTokenCharacter else { throw .invalid("the request line is not valid") }
        let limit = self.limits.maxRequestLineBytes + self.limits.maxHeaderBytes + 4
        let found: Int? = buffer.withUnsafeReadableBytes { bytes in
            // Resume a few bytes back, so a CRLF CRLF split across reads is found.
            var index = max(0, scanned - 3)
            while index < bytes.count, let lf = Self.firstIndex(of: 0x0A, in: bytes[index...]) {
                if lf >= 3 && bytes[lf - 1] == 0x0D && bytes[lf - 2] == 0x0A && bytes[lf - 3] == 0x0D {
                    return lf + 1
                }
                // A head that ends with bare LFs is found too, and refused by the line reader.
                if lf >= 1 && bytes[lf - 1] == 0x0A { return lf + 1 }
                index = lf + 1
            }
            return nil
        }
        if let found {
            guard found <= limit else { throw .headTooLarge }
            return found
        }
        // Without an end in the first `limit` bytes, the end can only come later: too late.
        guard buffer.readableBytes < limit else { throw .headTooLarge }
        self.state = .head(scanned: buffer.readableBytes)
        return nil
    }

    private enum Framing: Equatable {
        case none
        case length(Int)
        case chunked
    }

    /// Parses a whole head, `bytes` ending in CRLF CRLF: the head, its framing, and whether it has
    /// `Expect: 100-continue`.
    private static func parseHead(
        _ bytes: Bytes, limits: Limits
    ) throws(ParseError) -> (HTTPRequestHead, Framing, expectsContinue: Bool) {
        var lines = LineReader(bytes: bytes)
        guard let requestLine = try lines.next() else { throw .invalid("the request line is missing") }
        guard requestLine.count <= limits.maxRequestLineBytes else { throw .headTooLarge }
        let (method, uri, version) = try Self.parseRequestLine(requestLine)

        var headers: [(String, String)] = []
        // Room for a usual request's headers up front: growing the array costs a copy per doubling.
        headers.reserveCapacity(min(limits.maxHeaderCount, 8))
        var contentLength: Int?
        var isChunked = false
        var sawTransferEncoding = false
        var expectsContinue: Bool?
        var headerBytes = 0
        while let line = try lines.next() {
            guard !line.isEmpty else { break }
            headerBytes += line.count + 2
            guard headerBytes <= limits.maxHeaderBytes, headers.count < limits.maxHeaderCount else {
                throw .headTooLarge
            }
            let (name, value) = try Self.parseField(line)
            headers.append((Self.string(name), Self.string(value)))
            // Names and values are compared as the received bytes, not as the strings just made of them.
            if Self.equalsLowercased(name, "content-length") {
                let length = try Self.contentLength(value)
                if let contentLength, contentLength != length { throw .invalid("the Content-Length values differ") }
                contentLength = length
            } else if Self.equalsLowercased(name, "transfer-encoding") {
                // Only `chunked`, once: a coding the broker cannot decode, or a list, is refused.
                guard !sawTransferEncoding, Self.equalsLowercased(value, "chunked") else {
                    throw .invalid("the only transfer coding accepted is a single chunked")
                }
                sawTransferEncoding = true
                isChunked = true
            } else if expectsContinue == nil, Self.equalsLowercased(name, "expect") {
                expectsContinue = Self.equalsLowercased(value, "100-continue")
            }
        }
        if isChunked && contentLength != nil {
            throw .invalid("a request has both Transfer-Encoding and Content-Length")
        }
        if isChunked && version.minor == 0 {
            throw .invalid("HTTP/1.0 has no chunked transfer coding")
        }
        let framing: Framing = isChunked ? .chunked : contentLength.map { .length($0) } ?? .none
        return (
            HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers)), framing,
            expectsContinue ?? false
        )
    }

    private static func parseRequestLine(
        _ line: Bytes
    ) throws(ParseError) -> (HTTPMethod, String, HTTPVersion) {
        guard let firstSpace = Self.firstIndex(of: 0x20, in: line) else {
            throw .invalid("the request line is not valid")
        }
        let methodBytes = line[line.startIndex..<firstSpace]
        guard !methodBytes.isEmpty, Self.all(methodBytes, \.isHTTPTokenCharacter) else {
            throw .invalid("the method is not a token")
        }
        let rest = line[(firstSpace + 1)...]
        guard let secondSpace = Self.firstIndex(of: 0x20, in: rest) else {
            throw .invalid("the request line is not valid")
        }
        let target = rest[rest.startIndex..<secondSpace]
        // Any byte but controls, space and DEL; bytes over 0x7F are read as UTF-8 (repaired), as before.
        guard !target.isEmpty, Self.all(target, { $0 > 0x20 && $0 != 0x7F }) else {
            throw .invalid("the request target is not valid")
        }
        let versionBytes = rest[(secondSpace + 1)...]
        let version: HTTPVersion
        if UnsafeRawBufferPointer(rebasing: versionBytes).equals("HTTP/1.1") {
            version = .http1_1
        } else if UnsafeRawBufferPointer(rebasing: versionBytes).equals("HTTP/1.0") {
            version = .http1_0
        } else {
            throw .invalid("only HTTP/1.0 and HTTP/1.1 are served")
        }
        return (Self.method(methodBytes), Self.string(target), version)
    }

    /// The method, without a `String` for the common ones.
    private static func method(_ bytes: Bytes) -> HTTPMethod {
        let raw = UnsafeRawBufferPointer(rebasing: bytes)
        switch raw.count {
        case 3:
            if raw.equals("GET") { return .GET }
            if raw.equals("PUT") { return .PUT }
        case 4:
            if raw.equals("POST") { return .POST }
            if raw.equals("HEAD") { return .HEAD }
        case 6:
            if raw.equals("DELETE") { return .DELETE }
        case 7:
            if raw.equals("OPTIONS") { return .OPTIONS }
        default:
            break
        }
        return HTTPMethod(rawValue: Self.string(bytes))
    }

    /// A field line's name and value (without the whitespace around it), checked.
    private static func parseField(_ line: Bytes) throws(ParseError) -> (name: Bytes, value: Bytes) {
        guard let colon = Self.firstIndex(of: UInt8(ascii: ":"), in: line) else {
            throw .invalid("a header line has no colon")
        }
        let name = line[line.startIndex..<colon]
        // Also refuses a folded line (one that starts with a space) and a space before the colon.
        guard !name.isEmpty, Self.all(name, \.isHTTPTokenCharacter) else {
            throw .invalid("a header name is not a token")
        }
        var value = line[(colon + 1)...]
        while let first = value.first, first == 0x20 || first == 0x09 { value = value.dropFirst() }
        while let last = value.last, last == 0x20 || last == 0x09 { value = value.dropLast() }
        guard Self.all(value, { $0 >= 0x20 ? $0 != 0x7F : $0 == 0x09 }) else {
            throw .invalid("a header value has a control character")
        }
        return (name, value)
    }

    private static func contentLength(_ value: Bytes) throws(ParseError) -> Int {
        guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw .invalid("Content-Length is not a number")
        }
        return value.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    /// A chunk-size line: hex digits, then optional extensions (ignored).
    private static func chunkSize(_ line: Bytes) throws(ParseError) -> Int {
        var size = 0
        var digits = 0
        var index = line.startIndex
        while index < line.endIndex, let digit = line[index].hexDigitValue {
            guard digits < 15 else { throw .invalid("a chunk size is too large") }
            size = size << 4 | Int(digit)
            digits += 1
            index += 1
        }
        guard digits > 0 else { throw .invalid("a chunk size is not hexadecimal") }
        let rest = line[index...]
        guard rest.isEmpty || rest.first == UInt8(ascii: ";") || rest.first == 0x20 || rest.first == 0x09,
            rest.allSatisfy({ $0 >= 0x20 ? $0 != 0x7F : $0 == 0x09 })
        else { throw .invalid("a chunk size line is not valid") }
        return size
    }

    // MARK: Bytes

    /// The line at the front of `buffer`: its length without CRLF and with it; nil while incomplete.
    private static func line(
        in buffer: ByteBuffer, limit: Int, what: String
    ) throws(ParseError) -> (content: Int, total: Int)? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: 0x0A) else {
            guard view.count <= max(limit, 0) else { throw .invalid("a \(what) line is too long") }
            return nil
        }
        let content = lf - view.startIndex - 1
        guard content >= 0, view[lf - 1] == 0x0D else { throw .invalid("a \(what) line does not end with CRLF") }
        guard content + 2 <= max(limit, 2) else { throw .invalid("a \(what) line is too long") }
        guard !view[view.startIndex..<(lf - 1)].contains(0x0D) else {
            throw .invalid("a \(what) line has a bare CR")
        }
        return (content, content + 2)
    }

    /// Splits a head into its CRLF-terminated lines, refusing a bare CR or LF.
    private struct LineReader {
        let bytes: Bytes
        var position: Int

        init(bytes: Bytes) {
            self.bytes = bytes
            self.position = bytes.startIndex
        }

        mutating func next() throws(ParseError) -> Bytes? {
            guard self.position < self.bytes.endIndex else { return nil }
            let rest = self.bytes[self.position...]
            guard let lf = HTTPRequestParser.firstIndex(of: 0x0A, in: rest) else {
                throw .invalid("a line does not end with CRLF")
            }
            guard lf > self.position, self.bytes[lf - 1] == 0x0D else {
                throw .invalid("a line ends with a bare LF")
            }
            let line = self.bytes[self.position..<(lf - 1)]
            guard HTTPRequestParser.firstIndex(of: 0x0D, in: line) == nil else {
                throw .invalid("a line has a bare CR")
            }
            self.position = lf + 1
            return line
        }
    }

    /// The bytes of a head: slices of the received buffer's memory, read in place.
    private typealias Bytes = Slice<UnsafeRawBufferPointer>

    /// Where `byte` first occurs in `bytes`, found by `memchr` (many bytes at a time), not a loop over each byte.
    private static func firstIndex(of byte: UInt8, in bytes: Bytes) -> Int? {
        let raw = UnsafeRawBufferPointer(rebasing: bytes)
        guard let base = raw.baseAddress, let found = memchr(base, Int32(byte), raw.count) else { return nil }
        return bytes.startIndex + (UnsafeRawPointer(found) - base)
    }

    /// Whether every byte passes `test`, checked over the plain buffer (a slice's iteration checks its bounds per byte).
    private static func all(_ bytes: Bytes, _ test: (UInt8) -> Bool) -> Bool {
        UnsafeRawBufferPointer(rebasing: bytes).allSatisfy(test)
    }

    /// `bytes` as text; invalid UTF-8 is repaired to U+FFFD.
    private static func string(_ bytes: Bytes) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes), as: UTF8.self)
    }

    /// Whether `bytes` equal `lowercase` (ASCII, already lowercase) ignoring case.
    private static func equalsLowercased(_ bytes: Bytes, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        var offset = 0
        for byte in bytes {
            let folded = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            guard folded == expected[offset] else { return false }
            offset += 1
        }
        return true
    }
}
