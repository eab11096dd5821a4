/// Turns the bytes of a `text/event-stream` body into ``SSEMessage``s, exactly as the WHATWG HTML standard's
/// "event stream interpretation" does.
///
/// Feed it bytes in chunks of any size, split anywhere (inside a line, inside a CRLF, inside a UTF-8 sequence
/// or the byte-order mark); each call returns the events those bytes completed.
///
/// ```
/// \xEF\xBB\xBF          one byte-order mark, dropped, at stream start only
/// : hb                  comment (counted in `commentCount`)
/// retry: 3000           reconnection time, ASCII digits only, else ignored
/// id: 7                 sets the last event ID at the next blank line (ignored if it contains NUL); persists
/// event: update         event type, "message" when unset
/// data: first           appended to the data buffer with a trailing "\n"
/// data:second           one leading space after the colon is dropped, not more
/// (blank line)          dispatches, unless no data line was seen (then only the buffers reset)
/// ```
/// Lines end in CRLF, LF or CR; a CR at the end of one chunk and an LF at the start of the next are one line end.
/// A line without a colon is a field name with an empty value; unknown fields are ignored. Bytes after the last
/// blank line are never dispatched: an event cut off by a dropped connection is discarded, as the standard says.
///
/// A parser reads one response body. To follow a stream across reconnections, start each new body with
/// `SSEParser(lastEventID: previous.lastEventID)`.
public struct SSEParser: Sendable {
    private enum ByteOrderMark {
        /// How many bytes of `EF BB BF` have been seen at the start of the stream so far.
        case checking(matched: Int)
        case done
    }

    private static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// How many comment lines (starting with `:`) were read, such as the broker's `: hb` heartbeats.
    public private(set) var commentCount = 0
    /// The last valid `retry:` value read, in milliseconds, even from a block that dispatched no event.
    public private(set) var retry: Int?
    /// The last event ID: the last `id:` value as of the last blank line, kept across events; `""` until one is
    /// set. The `id:` of an event cut off before its blank line does not count, so this is what to send as
    /// `Last-Event-ID` when reconnecting: the partial event is replayed, not skipped.
    public private(set) var lastEventID: String

    private var byteOrderMark = ByteOrderMark.checking(matched: 0)
    private var line: [UInt8] = []
    private var lastByteWasCR = false
    private var eventType = ""
    private var data = ""
    private var lastEventIDBuffer: String
    private var eventID: String?
    private var eventRetry: Int?

    /// - Parameters:
    ///   - lastEventID: The last event ID to start from, such as the one the previous connection ended with.
    public init(lastEventID: String = "") {
        self.lastEventID = lastEventID
        self.lastEventIDBuffer = lastEventID
    }

    /// Reads `bytes` and returns the events they complete, in order.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [SSEMessage] {
        var messages: [SSEMessage] = []
        for byte in bytes {
            switch self.byteOrderMark {
            case .done:
                self.consume(byte, into: &messages)
            case .checking(let matched):
                if byte == Self.byteOrderMark[matched] {
                    self.byteOrderMark =
                        matched + 1 == Self.byteOrderMark.count ? .done : .checking(matched: matched + 1)
                } else {
                    // Not a byte-order mark after all: what looked like its start is content.
                    self.byteOrderMark = .done
                    for pending in Self.byteOrderMark[..<matched] {
                        self.consume(pending, into: &messages)
                    }
                    self.consume(byte, into: &messages)
                }
            }
        }
        return messages
    }

    private mutating func consume(_ byte: UInt8, into messages: inout [SSEMessage]) {
        switch byte {
        case UInt8(ascii: "\n"):
            if self.lastByteWasCR {
                // The LF of a CRLF: the CR already ended the line.
                self.lastByteWasCR = false
            } else {
                self.endLine(into: &messages)
            }
        case UInt8(ascii: "\r"):
            self.lastByteWasCR = true
            self.endLine(into: &messages)
        default:
            self.lastByteWasCR = false
            self.line.append(byte)
        }
    }

    private mutating func endLine(into messages: inout [SSEMessage]) {
        defer { self.line.removeAll(keepingCapacity: true) }
        guard let first = self.line.first else {
            if let message = self.dispatch() {
                messages.append(message)
            }
            return
        }
        if first == UInt8(ascii: ":") {
            self.commentCount += 1
            return
        }
        guard let colon = self.line.firstIndex(of: UInt8(ascii: ":")) else {
            self.process(field: self.line[...], value: [][...])
            return
        }
        var valueStart = colon + 1
        if valueStart < self.line.endIndex, self.line[valueStart] == UInt8(ascii: " ") {
            valueStart += 1
        }
        self.process(field: self.line[..<colon], value: self.line[valueStart...])
    }

    private mutating func process(field: ArraySlice<UInt8>, value: ArraySlice<UInt8>) {
        if field.elementsEqual("event".utf8) {
            self.eventType = String(decoding: value, as: UTF8.self)
        } else if field.elementsEqual("data".utf8) {
            self.data += String(decoding: value, as: UTF8.self)
            self.data += "\n"
        } else if field.elementsEqual("id".utf8) {
            guard !value.contains(0) else { return }
            let id = String(decoding: value, as: UTF8.self)
            self.lastEventIDBuffer = id
            self.eventID = id
        } else if field.elementsEqual("retry".utf8) {
            guard let milliseconds = Self.parseDigits(value) else { return }
            self.retry = milliseconds
            self.eventRetry = milliseconds
        }
    }

    /// Handles a blank line: takes the last event ID from its buffer, returns the buffered event if it has data,
    /// and resets the event's buffers.
    private mutating func dispatch() -> SSEMessage? {
        self.lastEventID = self.lastEventIDBuffer
        defer {
            self.eventType = ""
            self.data = ""
            self.eventID = nil
            self.eventRetry = nil
        }
        guard !self.data.isEmpty else { return nil }
        var data = self.data
        if data.utf8.last == UInt8(ascii: "\n") {
            data.unicodeScalars.removeLast()
        }
        return SSEMessage(
            id: self.eventID,
            lastEventID: self.lastEventID,
            event: self.eventType.isEmpty ? "message" : self.eventType,
            data: data,
            retry: self.eventRetry
        )
    }

    /// The value of a non-empty run of ASCII digits, or `nil` for anything else (including overflow).
    private static func parseDigits(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard !bytes.isEmpty else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = shifted.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return value
    }
}
