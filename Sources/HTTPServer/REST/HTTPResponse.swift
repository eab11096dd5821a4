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
