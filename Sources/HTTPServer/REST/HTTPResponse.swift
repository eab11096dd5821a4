import EventBroker
import NIOCore
import NIOHTTP1

/// A complete, small HTTP response: a status, headers and a JSON (or empty) body.
struct HTTPResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: [(String, String)]
    var body: String?
    /// The connection is closed after this answer.
    var closesConnection = false
    /// `headers` already hold the CORS headers (preflight answers).
    var includesCORS = false

    /// The headers of a JSON answer, shared so that the common answer builds no array.
    private static let jsonHeaders = [("Content-Type", "application/json")]

    static func json(_ body: String, status: HTTPResponseStatus = .ok, headers: [(String, String)] = []) -> HTTPResponse
    {
        HTTPResponse(
            status: status, headers: headers.isEmpty ? Self.jsonHeaders : Self.jsonHeaders + headers, body: body)
    }

    static func error(_ error: APIError) -> HTTPResponse {
        var response = HTTPResponse.json(error.jsonBody, status: error.status, headers: error.headers)
        response.closesConnection = error.closesConnection
        return response
    }

    static func empty(_ status: HTTPResponseStatus, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: headers, body: nil)
    }
}

/// A tiny JSON object writer for response bodies: keys in the order written, each member appended in place to one
/// string (no string per member).
struct JSONObjectWriter {
    private var text: String
    private var isFirst = true

    init(capacity: Int = 64) {
        self.text = "{"
        self.text.reserveCapacity(capacity)
    }

    /// Keys are literals, always plain ASCII names: written as they are, with no escaping to check.
    private mutating func key(_ key: StaticString) {
        self.text += self.isFirst ? "\"" : ",\""
        self.isFirst = false
        key.withUTF8Buffer { self.text += String(decoding: $0, as: UTF8.self) }
        self.text += "\":"
    }

    /// `json` is already JSON text.
    mutating func raw(_ key: StaticString, _ json: String) {
        self.key(key)
        self.text += json
    }

    mutating func string(_ key: StaticString, _ value: String?) {
        self.key(key)
        if let value { JSONValue.writeString(value, to: &self.text) } else { self.text += "null" }
    }

    mutating func int(_ key: StaticString, _ value: Int) { self.raw(key, String(value)) }

    mutating func bool(_ key: StaticString, _ value: Bool) { self.raw(key, value ? "true" : "false") }
    mutating func strings(_ key: StaticString, _ values: some Sequence<String>) {
        self.key(key)
        self.text += "["
        for (index, value) in values.enumerated() {
            if index > 0 { self.text += "," }
            JSONValue.writeString(value, to: &self.text)
        }
        self.text += "]"
    }

    /// The object's JSON text.
    consuming func finish() -> String {
        self.text += "}"
        return self.text
    }
}

/// Writes bytes straight into a string's storage as it is created, for a hot answer whose longest size is known: one
/// allocation and no appends. Its text must need no JSON escaping (literals, digits, topic names).
struct PlainTextWriter {
    private let buffer: UnsafeMutableBufferPointer<UInt8>
    private(set) var count = 0

    /// A string of at most `capacity` bytes, written by `body`.
    static func string(capacity: Int, _ body: (inout PlainTextWriter) -> Void) -> String {
        String(unsafeUninitializedCapacity: capacity) { buffer in
            var writer = PlainTextWriter(buffer: buffer)
            body(&writer)
            return writer.count
        }
    }

    private init(buffer: UnsafeMutableBufferPointer<UInt8>) {
        self.buffer = buffer
    }

    mutating func write(_ text: StaticString) {
        text.withUTF8Buffer { self.write(bytes: $0) }
    }

    mutating func write(_ text: String) {
        var text = text
        text.withUTF8 { self.write(bytes: $0) }
    }

    mutating func write(digitsOf value: UInt64) {
        ByteBuffer.withDigits(of: value, radix: 10) { self.write(bytes: $0.assumingMemoryBound(to: UInt8.self)) }
    }

    private mutating func write(bytes: UnsafeBufferPointer<UInt8>) {
        precondition(self.count + bytes.count <= self.buffer.count, "PlainTextWriter: over its capacity")
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        (self.buffer.baseAddress! + self.count).update(from: source, count: bytes.count)
        self.count += bytes.count
    }
}
