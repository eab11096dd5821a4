/// Turns the broker's WebSocket messages (one JSON object per text message) into the ``SSEMessage``s an
/// ``SSEParser`` reads from the same broker's event stream, so both transports look alike to a caller.
///
/// ```
/// {"type":"connected","clientId":"c1","topics":["a"]}   → event "connected", data {"clientId":"c1","topics":["a"]}
/// {"type":"event","id":"7","topic":"a","data":"hi"}     → id "7", event "message", data hi
/// {"type":"event","id":"8","event":"created","data":{"n":1}}  → id "8", event "created", data {"n":1}
/// {"type":"event","event":"gap","data":{"lastEventId":"3","oldestAvailable":"5"}}  → no id, event "gap"
/// {"type":"error","code":"invalid_topic","message":"…"} → ``Output/serverError(_:)``
/// {"type":"ack",…}, {"type":"pong",…}, unknown types    → ``Output/ignored(type:)``
/// ```
/// A string `data` is the text itself; any other JSON value is its compact JSON text, keys in the order sent. Line
/// ends in a string (CRLF, CR) become LF, as they do on an event stream, whose `data:` lines are joined with LF.
/// `topic` and `topics` have no place in an ``SSEMessage`` and are not kept. The `connected` message's data is the
/// object without its `type`, which is exactly the data of the event stream's `connected` frame.
///
/// Like ``SSEParser``, it keeps the last event id across messages; to follow a stream across reconnections, start
/// each connection's parser from the previous one's ``lastEventID``.
public struct WebSocketMessageParser: Sendable {
    /// What one message means to a subscriber.
    public enum Output: Hashable, Sendable {
        /// A `connected` or `event` message (a `gap` included), shaped as ``SSEParser`` shapes the same frame.
        case message(SSEMessage)
        /// An `error` message; the connection stays open.
        case serverError(WebSocketServerError)
        /// A message with nothing to report to a subscriber: `ack`, `pong`, or a `type` this client does not know.
        case ignored(type: String)
    }

    /// The id of the last `event` message that had one, kept across messages; `""` until one arrives. This is what
    /// to send as `lastEventId` when reconnecting.
    public private(set) var lastEventID: String

    public init(lastEventID: String = "") {
        self.lastEventID = lastEventID
    }

    /// Reads one text message.
    /// - Throws: ``BrokerClientError`` (``BrokerClientError/Code/invalidMessage``) when `text` is not a JSON object
    ///   with a string `type`, or a member of a `connected`, `event` or `error` message has the wrong JSON type.
    public mutating func parse(_ text: String) throws(BrokerClientError) -> Output {
        let json: WebSocketJSON
        do {
            json = try WebSocketJSON.parse(text.utf8)
        } catch {
            throw Self.invalid("is not JSON (\(error))", text)
        }
        guard case .object(let members) = json, let type = json["type"]?.stringValue else {
            throw Self.invalid("is not a JSON object with a string \"type\"", text)
        }
        switch type {
        case "connected":
            let data = WebSocketJSON.object(members.filter { $0.key != "type" }).serialized()
            return .message(SSEMessage(lastEventID: self.lastEventID, event: "connected", data: data))
        case "event":
            return .message(try self.readEvent(json, text: text))
        case "error":
            return .serverError(
                WebSocketServerError(
                    code: try Self.string(json["code"], "code", text) ?? "",
                    message: try Self.string(json["message"], "message", text) ?? "",
                    ref: json["ref"]?.serialized()
                )
            )
        default:
            return .ignored(type: type)
        }
    }

    private mutating func readEvent(_ json: WebSocketJSON, text: String) throws(BrokerClientError) -> SSEMessage {
        let id: String?
        switch json["id"] {
        case .string(let value), .number(let value): id = value
        case nil, .null: id = nil
        default: throw Self.invalid("whose \"id\" is neither a string nor a number", text)
        }
        let event = try Self.string(json["event"], "event", text) ?? ""
        let data: String
        switch json["data"] {
        case .string(let value): data = Self.normalizingLineEnds(value)
        case nil: data = ""
        case let value?: data = value.serialized()
        }
        if let id {
            self.lastEventID = id
        }
        return SSEMessage(id: id, lastEventID: self.lastEventID, event: event.isEmpty ? "message" : event, data: data)
    }

    /// The text of a string member, `nil` when it is absent or `null`.
    private static func string(_ value: WebSocketJSON?, _ name: String, _ text: String) throws(BrokerClientError)
        -> String?
    {
        switch value {
        case .string(let value): return value
        case nil, .null: return nil
        default: throw Self.invalid("whose \"\(name)\" is not a string", text)
        }
    }

    /// `text` with CRLF and CR turned into LF.
    private static func normalizingLineEnds(_ text: String) -> String {
        guard text.utf8.contains(UInt8(ascii: "\r")) else { return text }
        var scalars = String.UnicodeScalarView()
        var afterCR = false
        for scalar in text.unicodeScalars {
            if scalar == "\n", afterCR {
                afterCR = false
                continue
            }
            afterCR = scalar == "\r"
            scalars.append(afterCR ? "\n" : scalar)
        }
        return String(scalars)
    }

    private static func invalid(_ problem: String, _ text: String) -> BrokerClientError {
        let excerpt = text.count > 200 ? text.prefix(200) + "…" : Substring(text)
        return BrokerClientError(.invalidMessage, "The broker sent a WebSocket message that \(problem): \(excerpt)")
    }
}
