import EventBroker

/// A client's message on `/api/ws`: one JSON object per text message, with a `type` and an optional `ref` that the
/// answer echoes verbatim.
///
/// ```
/// {"type":"subscribe","topics":["orders","audit/*"],"lastEventId":"1763780248000001","ref":1}
/// {"type":"unsubscribe","topics":["audit/*"]}
/// {"type":"publish","topic":"orders","data":{"id":42},"event":"created","ref":"p-1"}
/// {"type":"ping"}
/// ```
/// `topics` may also be a single `topic`; a publish takes every field of `POST /api/events/publish`'s JSON body.
struct WebSocketMessage {
    enum Request {
        case subscribe([TopicSelector], lastEventID: String?)
        case unsubscribe([TopicSelector])
        case publish(PublishBody)
        case ping
    }

    /// The client's `ref`, any JSON value; nil when absent.
    let ref: JSONValue?
    /// What the client asked, or why it cannot be done (answered with an `error` message; the connection stays).
    let request: Result<Request, APIError>

    /// Decodes one text message.
    static func decode(_ text: String) -> WebSocketMessage {
        let root: JSONValue
        do {
            root = try JSONParser.parse(text.utf8)
        } catch {
            return WebSocketMessage(
                ref: nil, request: .failure(APIError(.badRequest, "invalid_json", "The message is not JSON: \(error)."))
            )
        }
        guard case .object = root else {
            return WebSocketMessage(
                ref: nil,
                request: .failure(
                    APIError(.badRequest, "invalid_json", "A message must be a JSON object, not \(root.typeName).")))
        }
        let ref = root["ref"]
        do throws(APIError) {
            return WebSocketMessage(ref: ref, request: .success(try Self.request(root)))
        } catch {
            return WebSocketMessage(ref: ref, request: .failure(error))
        }
    }

    private static func request(_ root: JSONValue) throws(APIError) -> Request {
        guard case .string(let type)? = root["type"] else {
            throw APIError(
                .badRequest, "missing_field", "Give \"type\": subscribe, unsubscribe, publish or ping.")
        }
        switch type {
        case "subscribe":
            let lastEventID: String?
            switch root["lastEventId"] {
            case nil, .null?: lastEventID = nil
            case .string(let id)?: lastEventID = id
            case .number(let id)?: lastEventID = id
            case let other?: throw APIError.invalidField("lastEventId", "must be a string, not \(other.typeName)")
            }
            return .subscribe(try Self.selectors(root), lastEventID: lastEventID)
        case "unsubscribe":
            return .unsubscribe(try Self.selectors(root))
        case "publish":
            return .publish(try PublishBody.decode(object: root))
        case "ping":
            return .ping
        default:
            throw APIError(
                .badRequest, "unknown_type",
                "Unknown message type '\(type)': use subscribe, unsubscribe, publish or ping.")
        }
    }

    /// The selectors of `topics` (an array) or `topic` (one), without repeats.
    private static func selectors(_ root: JSONValue) throws(APIError) -> [TopicSelector] {
        var names: [String] = []
        switch root["topic"] {
        case nil, .null?: break
        case .string(let name)?: names.append(name)
        case let other?: throw APIError.invalidField("topic", "must be a string, not \(other.typeName)")
        }
        switch root["topics"] {
        case nil, .null?: break
        case .array(let elements)?:
            for element in elements {
                guard case .string(let name) = element else {
                    throw APIError.invalidField("topics", "must be an array of strings")
                }
                names.append(name)
            }
        case let other?: throw APIError.invalidField("topics", "must be an array of strings, not \(other.typeName)")
        }
        guard !names.isEmpty else {
            throw APIError(.badRequest, "missing_field", "Give \"topics\": [\"name\", …] (or \"topic\": \"name\").")
        }
        var selectors: [TopicSelector] = []
        for name in names {
            let selector: TopicSelector
            do { selector = try TopicSelector(name) } catch { throw APIError(error) }
            if !selectors.contains(selector) { selectors.append(selector) }
        }
        return selectors
    }
}

/// The server's JSON messages other than events (which `WebSocketEventFrame` encodes once per event).
enum WebSocketReply {
    static func connected(clientID: ClientID, name: String?, topics: [TopicSelector]) -> String {
        var json = JSONObjectWriter()
        json.string("type", "connected")
        json.string("clientId", clientID.rawValue)
        json.string("name", name)
        json.strings("topics", topics.lazy.map(\.value))
        return json.finish()
    }

    /// The answer to a publish: the event's id.
    static func ack(ref: JSONValue?, id: EventID) -> String {
        var json = Self.start("ack", ref: ref)
        json.string("id", id.description)
        return json.finish()
    }

    /// The answer to a subscribe or unsubscribe: every selector the connection now has.
    static func ack(ref: JSONValue?, topics: [TopicSelector]) -> String {
        var json = Self.start("ack", ref: ref)
        json.strings("topics", topics.lazy.map(\.value))
        return json.finish()
    }

    static func pong(ref: JSONValue?) -> String {
        Self.start("pong", ref: ref).finish()
    }

    static func error(_ error: APIError, ref: JSONValue?) -> String {
        var json = Self.start("error", ref: ref)
        json.string("code", error.code)
        json.string("message", error.message)
        return json.finish()
    }

    /// The `gap` notice, as an event without id or topic, like SSE's `event: gap` frame.
    static func gap(_ gap: HistoryGap) -> String {
        var data = JSONObjectWriter()
        data.string("lastEventId", gap.lastEventID)
        data.string("oldestAvailable", gap.oldestAvailable?.description)
        var json = JSONObjectWriter()
        json.string("type", "event")
        json.string("event", "gap")
        json.raw("data", data.finish())
        return json.finish()
    }

    private static func start(_ type: String, ref: JSONValue?) -> JSONObjectWriter {
        var json = JSONObjectWriter()
        json.string("type", type)
        if let ref { json.raw("ref", ref.serialized()) }
        return json
    }
}
