import EventBroker
import NIOCore

/// The fields of a publish, broadcast or direct-message body, in whichever of the three forms it came:
///
/// ```
/// application/json                    {"topic": "t" | "topics": [...], "data": <any>, "event"?, "retry"?, "private"?,
///                                      "ephemeral"?}
/// application/x-www-form-urlencoded   topic=t&data=hello&event=e
/// anything, with ?topic= in the URL   the body is the data (a JSON body stays a JSON value)
/// ```
/// Field types are checked here; names, sizes and emptiness are the bus's to judge.
struct PublishBody: Sendable {
    /// Which endpoint a body is for: it decides what the raw form needs in the query.
    enum Kind: Sendable {
        case publish
        case broadcast
        case message
    }

    var topics: [String] = []
    var data: String?
    var dataIsJSON = false
    var event: String?
    var retry: Int?
    var isPrivate = false
    /// Delivered live, never stored in history (typing indicators).
    var isEphemeral = false
    var to: String?
    var user: String?

    static let maxRetryMilliseconds = 86_400_000

    static func decode(kind: Kind, contentType: String?, target: RequestTarget, body: ByteBuffer) throws(APIError)
        -> PublishBody
    {
        let mediaType = contentType.map(Self.mediaType)
        let (isJSON, isForm, isText) = Self.classify(mediaType)
        // One pass over the query, whichever form the body turns out to be in.
        let query = QueryFields(target)
        let queryNamesTarget: Bool
        switch kind {
        case .publish: queryNamesTarget = query.namesTopic
        case .message: queryNamesTarget = query.to != nil || query.user != nil
        case .broadcast: queryNamesTarget = isText
        }
        if queryNamesTarget {
            return try Self.decodeRaw(query: query, body: body, asJSON: isJSON && mediaType != nil)
        }
        if isForm { return try Self.decodeForm(body) }
        if isJSON { return try Self.decodeJSON(body) }
        let hint: String
        switch kind {
        case .publish: hint = "or send any body with ?topic= in the URL"
        case .message: hint = "or send any body with ?to= in the URL"
        case .broadcast: hint = "or text/plain"
        }
        throw APIError(
            .unsupportedMediaType, "unsupported_media_type",
            "Content-Type '\(mediaType ?? "")' is not supported: use application/json, application/x-www-form-urlencoded, \(hint)."
        )
    }

    /// The query parameters a raw body's fields come from, read in one pass: every `topic`, then every `topics`
    /// value; the first of each other name.
    private struct QueryFields {
        var topics: [String] = []
        var listedTopics: [String] = []
        var to: String?
        var user: String?
        var event: String?
        var retry: String?
        var isPrivate: String?
        var ephemeral: String?

        init(_ target: RequestTarget) {
            target.forEachParameterBytes { rawName, rawValue in
                let value = { RequestTarget.decodeForm(bytes: rawValue) }
                // Names are matched as bytes; only an encoded name is decoded first.
                let name =
                    rawName.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") })
                    ? Self.name(RequestTarget.decodeForm(bytes: rawName)) : Self.name(rawName)
                switch name {
                case .topic: self.topics.append(value())
                case .topics: self.listedTopics.append(value())
                case .to: self.to = self.to ?? value()
                case .user: self.user = self.user ?? value()
                case .event: self.event = self.event ?? value()
                case .retry: self.retry = self.retry ?? value()
                case .private: self.isPrivate = self.isPrivate ?? value()
                case .ephemeral: self.ephemeral = self.ephemeral ?? value()
                case nil: break
                }
            }
        }

        private enum Name {
            case topic, topics, to, user, event, retry, `private`, ephemeral
        }

        private static func name(_ name: UnsafeBufferPointer<UInt8>) -> Name? {
            let bytes = UnsafeRawBufferPointer(name)
            switch bytes.count {
            case 2: return bytes.equals("to") ? .to : nil
            case 4: return bytes.equals("user") ? .user : nil
            case 5:
                if bytes.equals("topic") { return .topic }
                if bytes.equals("event") { return .event }
                return bytes.equals("retry") ? .retry : nil
            case 6: return bytes.equals("topics") ? .topics : nil
            case 7: return bytes.equals("private") ? .private : nil
            case 9: return bytes.equals("ephemeral") ? .ephemeral : nil
            default: return nil
            }
        }

        private static func name(_ text: String) -> Name? {
            var text = text
            return text.withUTF8 { Self.name($0) }
        }

        /// Whether `topic` or `topics` is given, even empty.
        var namesTopic: Bool { !self.topics.isEmpty || !self.listedTopics.isEmpty }
    }

    /// Whether a media type (nil: none given) is read as JSON, a form, or text, judged on its bytes.
    private static func classify(_ mediaType: String?) -> (isJSON: Bool, isForm: Bool, isText: Bool) {
        guard var mediaType else { return (true, false, false) }
        return mediaType.withUTF8 { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            return (
                bytes.equals("application/json") || bytes.hasSuffix("+json"),
                bytes.equals("application/x-www-form-urlencoded"),
                bytes.hasPrefix("text/") || bytes.equals("application/octet-stream")
            )
        }
    }

    static func mediaType(_ contentType: String) -> String {
        // Common case first: already a bare, lowercase media type.
        if !contentType.utf8.contains(where: {
            $0 == UInt8(ascii: ";") || $0 == UInt8(ascii: " ") || ($0 >= 65 && $0 <= 90)
        }) {
            return contentType
        }
        let base = contentType.split(separator: ";", maxSplits: 1).first.map(String.init) ?? contentType
        return base.trimmingASCIIWhitespace().lowercased()
    }

    private static func text(_ body: ByteBuffer) throws(APIError) -> String {
        let text: String? = body.withUnsafeReadableBytes { bytes in
            // ASCII, the common case, is valid as it is and decodes on the standard library's fast path; anything
            // else is validated, never repaired.
            if !bytes.contains(where: { $0 >= 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
            return String(validating: bytes, as: UTF8.self)
        }
        guard let text else {
            throw APIError(.badRequest, "invalid_data", "The body is not valid UTF-8 text.")
        }
        return text
    }

    private static func decodeRaw(query: QueryFields, body: ByteBuffer, asJSON: Bool) throws(APIError) -> PublishBody {
        var fields = PublishBody()
        fields.topics = Self.splitLists(
            query.listedTopics.isEmpty ? query.topics : query.topics + query.listedTopics)
        fields.to = query.to
        fields.user = query.user
        fields.event = query.event
        if let retry = query.retry { fields.retry = try Self.parseRetry(retry) }
        if let isPrivate = query.isPrivate { fields.isPrivate = try Self.parseBool(isPrivate, "private") }
        if let ephemeral = query.ephemeral { fields.isEphemeral = try Self.parseBool(ephemeral, "ephemeral") }
        if asJSON {
            let value: JSONValue
            do {
                value = try JSONParser.parse(body.readableBytesView)
            } catch {
                throw APIError(.badRequest, "invalid_json", "The body is not valid JSON: \(error).")
            }
            fields.data = Self.dataText(value)
            fields.dataIsJSON = !Self.isString(value)
        } else {
            fields.data = try Self.text(body)
        }
        return fields
    }

    private static func decodeForm(_ body: ByteBuffer) throws(APIError) -> PublishBody {
        let pairs = RequestTarget.parseForm(Substring(try Self.text(body)))
        var fields = PublishBody()
        func first(_ name: String) -> String? { pairs.first(where: { $0.name == name })?.value }
        fields.topics = Self.splitLists(pairs.filter { $0.name == "topic" || $0.name == "topics" }.map(\.value))
        fields.data = first("data")
        fields.event = first("event")
        fields.to = first("to")
        fields.user = first("user")
        if let retry = first("retry") { fields.retry = try Self.parseRetry(retry) }
        if let isPrivate = first("private") { fields.isPrivate = try Self.parseBool(isPrivate, "private") }
        if let ephemeral = first("ephemeral") { fields.isEphemeral = try Self.parseBool(ephemeral, "ephemeral") }
        return fields
    }

    private static func decodeJSON(_ body: ByteBuffer) throws(APIError) -> PublishBody {
        let root: JSONValue
        do {
            root = try JSONParser.parse(body.readableBytesView)
        } catch {
            throw APIError(.badRequest, "invalid_json", "The body is not valid JSON: \(error).")
        }
        guard case .object = root else {
            throw APIError(.badRequest, "invalid_json", "The body must be a JSON object, not \(root.typeName).")
        }
        return try Self.decode(object: root)
    }

    /// The fields of a parsed JSON object (a JSON body, or a WebSocket `publish` message); other members are
    /// ignored.
    static func decode(object root: JSONValue) throws(APIError) -> PublishBody {
        var fields = PublishBody()
        switch root["topic"] {
        case nil, .null?: break
        case .string(let topic)?: fields.topics.append(topic)
        case let other?: throw APIError.invalidField("topic", "must be a string, not \(other.typeName)")
        }
        switch root["topics"] {
        case nil, .null?: break
        case .array(let elements)?:
            for element in elements {
                guard case .string(let topic) = element else {
                    throw APIError.invalidField("topics", "must be an array of strings")
                }
                fields.topics.append(topic)
            }
            if elements.isEmpty { throw APIError.invalidField("topics", "must name at least one topic") }
        case let other?: throw APIError.invalidField("topics", "must be an array of strings, not \(other.typeName)")
        }
        if let data = root["data"] {
            fields.data = Self.dataText(data)
            fields.dataIsJSON = !Self.isString(data)
        }
        fields.event = try Self.optionalString(root, "event")
        fields.to = try Self.optionalString(root, "to")
        fields.user = try Self.optionalString(root, "user")
        switch root["retry"] {
        case nil, .null?: break
        case .number(let text)?: fields.retry = try Self.parseRetry(text)
        case let other?:
            throw APIError.invalidField("retry", "must be an integer number of milliseconds, not \(other.typeName)")
        }
        switch root["private"] {
        case nil, .null?: break
        case .bool(let value)?: fields.isPrivate = value
        case let other?: throw APIError.invalidField("private", "must be a boolean, not \(other.typeName)")
        }
        switch root["ephemeral"] {
        case nil, .null?: break
        case .bool(let value)?: fields.isEphemeral = value
        case let other?: throw APIError.invalidField("ephemeral", "must be a boolean, not \(other.typeName)")
        }
        return fields
    }

    private static func optionalString(_ root: JSONValue, _ name: String) throws(APIError) -> String? {
        switch root[name] {
        case nil, .null?: return nil
        case .string(let value)?: return value
        case let other?: throw APIError.invalidField(name, "must be a string, not \(other.typeName)")
        }
    }

    private static func isString(_ value: JSONValue) -> Bool {
        if case .string = value { return true }
        return false
    }

    /// Strings are sent as they are; any other JSON value as its compact text.
    private static func dataText(_ value: JSONValue) -> String {
        if case .string(let text) = value { return text }
        return value.serialized()
    }

    /// Accepts `a,b` as well as repeated names.
    private static func splitLists(_ values: [String]) -> [String] {
        if values.count == 1, !values[0].utf8.contains(UInt8(ascii: ",")) { return values }
        return values.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    private static func parseRetry(_ text: String) throws(APIError) -> Int {
        guard let value = Int(text), value >= 0, value <= Self.maxRetryMilliseconds else {
            throw APIError.invalidField(
                "retry", "must be an integer from 0 to \(Self.maxRetryMilliseconds) (milliseconds)")
        }
        return value
    }

    private static func parseBool(_ text: String, _ name: String) throws(APIError) -> Bool {
        switch text.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off", "": return false
        default: throw APIError.invalidField(name, "must be true or false")
        }
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }
}
