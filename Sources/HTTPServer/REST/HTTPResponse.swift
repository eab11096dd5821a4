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

    static func json(_ body: String, status: HTTPResponseStatus = .ok, headers: [(String, String)] = []) -> HTTPResponse
    {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: body)
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

/// A tiny JSON object writer for response bodies: keys in the order written, values already JSON text.
struct JSONObjectWriter {
    private var text = "{"
    private var isFirst = true

    mutating func raw(_ key: String, _ json: String) {
        if !self.isFirst { self.text += "," }
        self.isFirst = false
        self.text += JSONValue.quoted(key)
        self.text += ":"
        self.text += json
    }

    mutating func string(_ key: String, _ value: String?) {
        self.raw(key, value.map(JSONValue.quoted) ?? "null")
    }

    mutating func int(_ key: String, _ value: Int) { self.raw(key, String(value)) }
    mutating func bool(_ key: String, _ value: Bool) { self.raw(key, value ? "true" : "false") }
    mutating func strings(_ key: String, _ values: [String]) {
        self.raw(key, "[" + values.map(JSONValue.quoted).joined(separator: ",") + "]")
    }

    var result: String { self.text + "}" }
}
