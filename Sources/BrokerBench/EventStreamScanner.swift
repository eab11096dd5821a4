/// Splits the body of the bench subscriber's SSE response into lines, undoing HTTP/1.1 chunk framing on the way,
/// without building strings.
///
/// A chunked body is a series of chunks and ends with a 0-size chunk (trailers after it are ignored); a body that is
/// not chunked is taken as it comes and never finishes. Lines end at `\n` (a `\r` before it stays in the line), and
/// only a line's first ``lineHeadBytes`` bytes are handed out, enough for the bench's event header; the rest of a
/// long line is skipped.
/// ```
/// chunked:  <hex size>[;extension]\r\n<size bytes of data>\r\n … 0\r\n
/// lines:    id: 7\n  data: <publisher> <sequence> <sent ns> xxxx…\n  \n
/// ```
/// It works on whole slices, not byte by byte: it searches each chunk's data for `\n` in one pass, and hands a line
/// that lies in one read to `onLine` as a slice of that read, with no copy. Only a line that spans reads (or chunks)
/// has its head collected in a small reusable buffer.
///
/// Like the byte-at-a-time decoder it replaced, it is lenient where the bench does not need to be strict: it does
/// not check the bytes of the CRLFs after a size and after data, and an empty size line ends the stream like a 0
/// chunk. A size byte that is neither a hex digit nor `;` (or a size past `Int.max`) throws; after that, feed the
/// scanner no more.
struct EventStreamScanner {
    enum Error: Swift.Error, Equatable {
        /// A chunk size line holds a byte that is neither a hex digit nor the `;` of an extension, or is too large.
        case badChunkSize
    }

    /// How many bytes of each line ``feed(_:onLine:)`` hands out.
    static let lineHeadBytes = 64

    private enum State {
        /// Reading a chunk size; after `;` an extension, ignored up to the line's end.
        case chunkSize(ChunkSizeLine)
        case chunkSizeLF(value: Int)
        case chunkData(remaining: Int)
        case chunkDataCR
        case chunkDataLF
        case plainBody
        case finished
    }

    private var state: State
    /// The head of a line that began in an earlier read or chunk; empty when no line is open.
    private var openLine: [UInt8] = []

    /// - Parameters:
    ///   - chunked: Whether the response has `Transfer-Encoding: chunked`; if not, the bytes are all body.
    init(chunked: Bool) {
        self.state = chunked ? .chunkSize(ChunkSizeLine()) : .plainBody
        self.openLine.reserveCapacity(Self.lineHeadBytes)
    }

    /// Whether the terminating chunk has been read: further bytes are ignored.
    var isFinished: Bool {
        if case .finished = self.state { true } else { false }
    }

    /// Decodes the next bytes of the body.
    ///
    /// - Parameters:
    ///   - bytes: The bytes, in order after the ones fed before.
    ///   - onLine: Called with the first at most ``lineHeadBytes`` bytes of each line that ends in `bytes`, without
    ///     its `\n`. The buffer is only valid during the call.
    /// - Throws: ``Error/badChunkSize``; lines before the bad byte have been handed out.
    mutating func feed(
        _ bytes: UnsafeRawBufferPointer, onLine: (UnsafeRawBufferPointer) -> Void
    ) throws(EventStreamScanner.Error) {
        var index = 0
        while index < bytes.count {
            switch self.state {
            case .chunkSize(var line):
                let ended: Bool
                do {
                    (index, ended) = try line.read(bytes, from: index)
                } catch {
                    throw .badChunkSize
                }
                // An empty size line ends the stream like a 0 chunk.
                self.state = ended ? line.size.map { .chunkSizeLF(value: $0) } ?? .finished : .chunkSize(line)
            case .chunkSizeLF(let value):
                index += 1
                self.state = value == 0 ? .finished : .chunkData(remaining: value)
            case .chunkData(let remaining):
                let count = min(remaining, bytes.count - index)
                self.scanLines(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + count)]), onLine: onLine)
                index += count
                self.state = count == remaining ? .chunkDataCR : .chunkData(remaining: remaining - count)
            case .chunkDataCR:
                index += 1
                self.state = .chunkDataLF
            case .chunkDataLF:
                index += 1
                self.state = .chunkSize(ChunkSizeLine())
            case .plainBody:
                self.scanLines(UnsafeRawBufferPointer(rebasing: bytes[index...]), onLine: onLine)
                index = bytes.count
            case .finished:
                return
            }
        }
    }

    /// Hands out each line that ends in `bytes` and keeps the head of the one left open at its end.
    private mutating func scanLines(_ bytes: UnsafeRawBufferPointer, onLine: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        while let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
            if self.openLine.isEmpty {
                let headEnd = min(end, start + Self.lineHeadBytes)
                onLine(UnsafeRawBufferPointer(rebasing: bytes[start..<headEnd]))
            } else {
                self.keepLineHead(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                self.openLine.withUnsafeBytes(onLine)
                self.openLine.removeAll(keepingCapacity: true)
            }
            start = end + 1
        }
        self.keepLineHead(UnsafeRawBufferPointer(rebasing: bytes[start...]))
    }

    /// Appends the start of `bytes` to the open line, up to ``lineHeadBytes`` in all.
    private mutating func keepLineHead(_ bytes: UnsafeRawBufferPointer) {
        let room = Self.lineHeadBytes - self.openLine.count
        guard room > 0, !bytes.isEmpty else { return }
        self.openLine.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes.prefix(room)))
    }
}

extension EventStreamScanner {
    /// The header the bench's publishers put at the start of each event's data.
    typealias DataLine = (publisher: Int, sequence: Int, sentNanoseconds: UInt64)

    private static let dataPrefix: [UInt8] = Array("data: ".utf8)
    /// Longer numbers are rejected rather than wrapped: 18 digits always fit in an `Int`.
    private static let maximumDigits = 18

    /// Parses an event's data line, `data: <publisher> <sequence> <sent ns> …`.
    ///
    /// The three decimal numbers are separated by single spaces; anything after the third one (a space and the
    /// padding, or the `\r` of a CRLF line end) is ignored.
    /// - Parameters:
    ///   - line: A line without its `\n`, as ``feed(_:onLine:)`` hands it out.
    /// - Returns: The numbers, or nil when the line is not an event's data line.
    static func parseDataLine(_ line: UnsafeRawBufferPointer) -> DataLine? {
        guard line.count > Self.dataPrefix.count, line.starts(with: Self.dataPrefix) else { return nil }
        return Self.parseNumbers(line, from: Self.dataPrefix.count)
    }

    /// Parses `<publisher> <sequence> <sent ns>` from `start`: three decimal numbers separated by single spaces,
    /// anything after the third ignored.
    static func parseNumbers(_ bytes: UnsafeRawBufferPointer, from start: Int) -> DataLine? {
        var index = start
        func number() -> Int? {
            var value = 0
            var digits = 0
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                value = value &* 10 &+ Int(bytes[index] &- UInt8(ascii: "0"))
                index += 1
                digits += 1
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
            return digits > 0 && digits <= Self.maximumDigits ? value : nil
        }
        guard let publisher = number(), let sequence = number(), let sent = number() else { return nil }
        return (publisher, sequence, UInt64(sent))
    }
}
