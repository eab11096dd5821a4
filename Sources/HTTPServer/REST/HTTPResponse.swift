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

    /// A number written as a JSON string (event ids, which JavaScript's numbers cannot hold exactly), without a
    /// string of its own: up to 20 digits, appended as two small strings, which need no allocation.
    mutating func quotedDigits(_ key: StaticString, _ value: UInt64) {
        self.key(key)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = 20
            var rest = value
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            let middle = max(start, 10)
            self.text += "\""
            self.text += String(decoding: UnsafeBufferPointer(rebasing: digits[start..<middle]), as: UTF8.self)
            self.text += String(decoding: UnsafeBufferPointer(rebasing: digits[middle..<20]), as: UTF8.self)
            self.text += "\""
        }
    }

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
