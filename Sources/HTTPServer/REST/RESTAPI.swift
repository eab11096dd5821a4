import EventBroker
import NIOCore
import NIOHTTP1

/// The REST endpoints: each turns a complete request into a response (or an `APIError`), with no I/O of its own.
struct RESTAPI: Sendable {
    static let version = "0.1.0"
    static let maxHistoryLimit = 1000
    static let defaultHistoryLimit = 100
    static let maxWaitSeconds = 60

    let broker: Broker
    let configuration: BrokerConfiguration
    let startedAt: ContinuousClock.Instant

    // MARK: Publishing

    /// The answer to a publish: at once from a broker that keeps events in memory, once the commit is done from one
    /// with a durable store.
    enum Answer {
        case now(HTTPResponse)
        case later(EventLoopFuture<HTTPResponse>)
    }

    /// Decodes and checks the request now (throwing its `4xx`); the answer comes once the broker has published the
    /// event, which with a durable store is after its commit.
    func publish(
        target: RequestTarget, headers: HTTPHeaders, body: ByteBuffer, principal: Principal = .open,
        on eventLoop: any EventLoop
    ) throws(APIError) -> Answer {
        let fields = try PublishBody.decode(
            kind: .publish, contentType: headers.first(name: "content-type"), target: target, body: body)
        let request = try self.request(
            fields, idempotencyKey: try Self.idempotencyKey(headers), principal: principal)
        return self.answer(
            on: eventLoop, Self.published, now: { () throws(BrokerError) in try self.broker.publish(request) },
            later: { self.broker.publish(request, promise: $0) })
    }

    /// Publishes decoded fields (from a REST body or a WebSocket `publish` message) once `principal` may publish to
    /// every topic they name. The future fails with a `BrokerError` when the broker refuses the event.
    func publish(
        _ fields: PublishBody, idempotencyKey: String?, principal: Principal = .open, on eventLoop: any EventLoop
    ) throws(APIError) -> EventLoopFuture<PublishResult> {
        let request = try self.request(fields, idempotencyKey: idempotencyKey, principal: principal)
        let promise = eventLoop.makePromise(of: PublishResult.self)
        self.broker.publish(request, promise: promise)
        return promise.futureResult
    }

    /// The broker's answer to a publish, a broadcast or a direct message, turned into a response by `response`:
    /// `now` without a durable store (no promise, no future), else `later` with a promise completed after the
    /// commit. A refusal becomes its error response either way.
    private func answer(
        on eventLoop: any EventLoop, _ response: @escaping @Sendable (PublishResult) -> HTTPResponse,
        now: () throws(BrokerError) -> PublishResult, later: (EventLoopPromise<PublishResult>) -> Void
    ) -> Answer {
        guard self.broker.isDurable else {
            do {
                return .now(response(try now()))
            } catch {
                return .now(.error(APIError(publishFailure: error)))
            }
        }
        let promise = eventLoop.makePromise(of: PublishResult.self)
        later(promise)
        return .later(promise.futureResult.map(response))
    }

    /// The broker's request for decoded fields, once `principal` may publish to every topic they name.
    private func request(
        _ fields: PublishBody, idempotencyKey: String?, principal: Principal
    ) throws(APIError) -> PublishRequest {
        guard !fields.topics.isEmpty else {
            throw APIError(
                .badRequest, "missing_field",
                "Give a topic: \"topic\": \"name\" or \"topics\": [...] (or ?topic= with a raw body).")
        }
        let data = try Self.requireData(fields)
        var topics: [TopicName] = []
        topics.reserveCapacity(fields.topics.count)
        for name in fields.topics {
            do { topics.append(try TopicName(name)) } catch { throw APIError(error) }
        }
        try Self.authorize { () throws(AuthorizationError) in try principal.authorizePublish(to: topics) }
        return PublishRequest(
            topics: topics, data: data, dataIsJSON: fields.dataIsJSON, eventType: fields.event,
            retryMilliseconds: fields.retry, isPrivate: fields.isPrivate,
            isEphemeral: fields.isEphemeral, idempotencyKey: idempotencyKey)
    }

    /// Needs a `broker.publish` selector matching `$broadcast` when authorization is on.
    func broadcast(
        target: RequestTarget, headers: HTTPHeaders, body: ByteBuffer, principal: Principal = .open,
        on eventLoop: any EventLoop
    ) throws(APIError) -> Answer {
        try Self.authorize { () throws(AuthorizationError) in try principal.authorizePublish(to: [.broadcast]) }
        let fields = try PublishBody.decode(
            kind: .broadcast, contentType: headers.first(name: "content-type"), target: target, body: body)
        guard fields.topics.isEmpty else {
            throw APIError.invalidField("topic", "is not allowed: a broadcast goes to every subscriber")
        }
        let data = try Self.requireData(fields)
        let key = try Self.idempotencyKey(headers)
        return self.answer(
            on: eventLoop, Self.published,
            now: { () throws(BrokerError) in
                try self.broker.broadcast(
                    data: data, dataIsJSON: fields.dataIsJSON, eventType: fields.event, idempotencyKey: key)
            },
            later: {
                self.broker.broadcast(
                    data: data, dataIsJSON: fields.dataIsJSON, eventType: fields.event, idempotencyKey: key,
                    promise: $0)
            })
    }

    /// Needs a `broker.publish` selector matching `$direct` when authorization is on.
    func message(
        target: RequestTarget, headers: HTTPHeaders, body: ByteBuffer, principal: Principal = .open,
        on eventLoop: any EventLoop
    ) throws(APIError) -> Answer {
        try Self.authorize { () throws(AuthorizationError) in
            try principal.authorizePublish(to: [Principal.directMessages])
        }
        let fields = try PublishBody.decode(
            kind: .message, contentType: headers.first(name: "content-type"), target: target, body: body)
        let recipient: DirectRecipient
        switch (fields.to, fields.user) {
        case (let to?, nil):
            guard !to.isEmpty else { throw APIError.invalidField("to", "must be a client id") }
            recipient = .client(ClientID(rawValue: to))
        case (nil, let user?):
            guard !user.isEmpty else { throw APIError.invalidField("user", "must be a user id") }
            recipient = .user(user)
        case (nil, nil):
            throw APIError(
                .badRequest, "missing_field", "Give a recipient: \"to\": \"<clientId>\" or \"user\": \"<user id>\".")
        case (_?, _?):
            throw APIError.invalidField("to", "and 'user' cannot both be given")
        }
        let data = try Self.requireData(fields)
        let key = try Self.idempotencyKey(headers)
        return self.answer(
            on: eventLoop,
            { result in
                var json = JSONObjectWriter()
                json.string("id", result.id.description)
                json.int("subscribers", result.subscribers)
                return .json(json.finish(), headers: result.isReplay ? [("Idempotent-Replayed", "true")] : [])
            },
            now: { () throws(BrokerError) in
                try self.broker.sendDirect(
                    to: recipient, data: data, dataIsJSON: fields.dataIsJSON, eventType: fields.event,
                    idempotencyKey: key)
            },
            later: {
                self.broker.sendDirect(
                    to: recipient, data: data, dataIsJSON: fields.dataIsJSON, eventType: fields.event,
                    idempotencyKey: key, promise: $0)
            })
    }

    /// Runs a policy check, turning its refusal into the `401` or `403` answer.
    static func authorize(_ check: () throws(AuthorizationError) -> Void) throws(APIError) {
        do {
            try check()
        } catch {
            throw APIError(error)
        }
    }

    private static func requireData(_ fields: PublishBody) throws(APIError) -> String {
        guard let data = fields.data else {
            throw APIError(
                .badRequest, "missing_field", "Give \"data\": the event's payload (a string or any JSON value).")
        }
        guard !data.isEmpty else {
            throw APIError(.badRequest, "empty_data", "'data' is empty: an event must carry data.")
        }
        return data
    }

    static func idempotencyKey(_ headers: HTTPHeaders) throws(APIError) -> String? {
        guard let key = headers.first(name: "idempotency-key") else { return nil }
        let bytes = key.utf8
        guard !bytes.isEmpty, bytes.count <= 255, bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw APIError(
                .badRequest, "invalid_header", "Idempotency-Key must be 1 to 255 printable ASCII characters.")
        }
        return key
    }

    /// `{"id":"…","topics":[…],"subscribers":n}`: the answer to every publish, so written straight into one string.
    /// Topic names need no JSON escaping (see `TopicName`); the id is a string, which JavaScript's numbers cannot
    /// hold exactly.
    static func published(_ result: PublishResult) -> HTTPResponse {
        let capacity = 80 + result.topics.reduce(0) { $0 + $1.value.utf8.count + 3 }
        let json = PlainTextWriter.string(capacity: capacity) { json in
            json.write("{\"id\":\"")
            json.write(digitsOf: result.id.rawValue)
            json.write("\",\"topics\":[")
            for (index, topic) in result.topics.enumerated() {
                json.write(index == 0 ? "\"" : ",\"")
                json.write(topic.value)
                json.write("\"")
            }
            json.write("],\"subscribers\":")
            json.write(digitsOf: UInt64(max(0, result.subscribers)))
            json.write("}")
        }
        return .json(json, headers: result.isReplay ? [("Idempotent-Replayed", "true")] : [])
    }

    // MARK: Reading

    func health() -> HTTPResponse {
        let stats = self.broker.stats()
        var connections = JSONObjectWriter()
        connections.int("sse", stats.connections[.sse] ?? 0)
        connections.int("ws", stats.connections[.webSocket] ?? 0)
        var json = JSONObjectWriter()
        json.string("status", self.broker.isShuttingDown ? "shutting_down" : "ok")
        json.int("uptimeSeconds", Int((ContinuousClock.now - self.startedAt).components.seconds))
        json.raw("connections", connections.finish())
        json.int("topics", stats.topics)
        json.string("version", Self.version)
        return .json(json.finish())
    }

    /// The topics `viewer` may see (with a token, those its `broker.subscribe` selectors match).
    func topics(viewableBy viewer: Principal = .open) -> HTTPResponse {
        let list = self.broker.topics().lazy.filter { viewer.mayView($0.topic) }.map(Self.topicJSON).joined(
            separator: ",")
        return .json("{\"topics\":[\(list)]}")
    }

    func topic(_ name: String, viewableBy viewer: Principal = .open) throws(APIError) -> HTTPResponse {
        let topic: TopicName
        do { topic = try TopicName(name) } catch { throw APIError(error) }
        guard viewer.mayView(topic) else {
            throw APIError(
                AuthorizationError(.forbidden, "The token's 'broker.subscribe' selectors do not match '\(topic)'."))
        }
        guard let info = self.broker.topic(topic) else {
            throw APIError(
                .notFound, "topic_not_found", "The broker has no history and no subscriber for topic '\(topic)'.")
        }
        // Who is there needs the right to watch the topic's presence too.
        guard let presenceTopic = Presence.topic(for: topic), viewer.mayView(presenceTopic) else {
            return .json(Self.topicJSON(info))
        }
        return .json(Self.topicJSON(info, presence: self.broker.presence(of: topic, limit: Self.maxMembersListed)))
    }

    /// The most members `GET /api/topics/{topic}` lists (`memberCount` counts them all).
    static let maxMembersListed = 1000

    private static func topicJSON(_ info: TopicInfo) -> String {
        Self.topicJSON(info, presence: nil)
    }

    private static func topicJSON(_ info: TopicInfo, presence: TopicPresence?) -> String {
        var json = JSONObjectWriter()
        json.string("topic", info.topic.value)
        json.int("subscribers", info.subscribers)
        json.int("memberCount", presence?.count ?? info.memberCount)
        json.string("lastEventId", info.lastEventID?.description)
        json.int("historySize", info.historySize)
        json.string("oldestEventId", info.oldestEventID?.description)
        if let presence {
            var members = ""
            for (index, member) in presence.members.enumerated() {
                var item = JSONObjectWriter()
                item.string("clientId", member.clientID.rawValue)
                item.string("name", member.name)
                item.string("transport", member.transport.rawValue)
                item.raw("since", String(member.sinceMilliseconds))
                members += index == 0 ? item.finish() : "," + item.finish()
            }
            json.raw("members", "[\(members)]")
            json.string("presenceAsOf", presence.asOf.description)
        }
        return json.finish()
    }

    /// A parsed `GET /api/events/history` request.
    struct HistoryQuery: Sendable {
        let selectors: [TopicSelector]
        let after: String?
        let limit: Int
        let wait: Int
    }

    static func historyQuery(_ target: RequestTarget) throws(APIError) -> HistoryQuery {
        let selectors = try Self.selectors(target)
        var limit = Self.defaultHistoryLimit
        if let text = target.first("limit") {
            guard let value = Int(text), value >= 1, value <= Self.maxHistoryLimit else {
                throw APIError.invalidParameter("limit", "must be an integer from 1 to \(Self.maxHistoryLimit)")
            }
            limit = value
        }
        var wait = 0
        if let text = target.first("wait") {
            guard let value = Int(text), value >= 0, value <= Self.maxWaitSeconds else {
                throw APIError.invalidParameter(
                    "wait", "must be a whole number of seconds from 0 to \(Self.maxWaitSeconds)")
            }
            wait = value
        }
        let after = target.first("after")
        if let after, EventID(parsing: after) == nil {
            throw APIError.invalidParameter("after", "must be an event id (decimal digits)")
        }
        return HistoryQuery(selectors: selectors, after: after, limit: limit, wait: wait)
    }

    /// The page of `query`, holding only the private events `reader` may read.
    func history(_ query: HistoryQuery, readableBy reader: Principal = .open) throws(APIError) -> HistoryPage {
        do {
            return try self.broker.history(
                selectors: query.selectors, after: query.after, limit: query.limit, readableBy: reader)
        } catch {
            throw APIError(error)
        }
    }

    static func historyResponse(_ page: HistoryPage) -> HTTPResponse {
        var events = "["
        for (index, event) in page.events.enumerated() {
            if index > 0 { events += "," }
            var json = JSONObjectWriter()
            json.string("id", event.id.description)
            json.string("topic", event.topics.first?.value)
            json.strings("topics", event.topics.map(\.value))
            if let type = event.eventType { json.string("event", type) }
            json.raw("data", event.dataIsJSON ? event.data : JSONValue.quoted(event.data))
            json.raw("time", String(event.timeMilliseconds))
            json.bool("private", event.isPrivate)
            events += json.finish()
        }
        events += "]"
        var json = JSONObjectWriter()
        json.raw("events", events)
        json.string("nextAfter", page.nextAfter.description)
        if let gap = page.gap {
            var gapJSON = JSONObjectWriter()
            gapJSON.string("lastEventId", gap.lastEventID)
            gapJSON.string("oldestAvailable", gap.oldestAvailable?.description)
            json.raw("gap", gapJSON.finish())
        }
        return .json(json.finish())
    }

    // MARK: Parameters

    /// The `topic` selectors of a subscription or history query: repeated and/or comma-separated.
    static func selectors(_ target: RequestTarget) throws(APIError) -> [TopicSelector] {
        let names = (target.values("topic") + target.values("topics")).flatMap {
            $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        guard !names.isEmpty else {
            throw APIError(
                .badRequest, "invalid_selector",
                "Give at least one topic selector: ?topic=NAME (repeatable, or comma-separated).")
        }
        var selectors: [TopicSelector] = []
        for name in names {
            let selector: TopicSelector
            do { selector = try TopicSelector(name) } catch { throw APIError(error) }
            if !selectors.contains(selector) { selectors.append(selector) }
        }
        return selectors
    }

    /// The longest display name `?name=` may give, in UTF-8 bytes.
    static let maxNameBytes = 64

    /// The display name a stream gives with `?name=` (presence shows it); nil when absent.
    ///
    /// - Throws: `invalid_parameter` for an empty name, one over ``maxNameBytes`` bytes, or one with control
    ///   characters.
    static func displayName(_ target: RequestTarget) throws(APIError) -> String? {
        guard let name = target.first("name") else { return nil }
        guard !name.isEmpty, name.utf8.count <= Self.maxNameBytes,
            !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw APIError.invalidParameter(
                "name", "must be 1 to \(Self.maxNameBytes) bytes of UTF-8 text without control characters")
        }
        return name
    }

    /// The id an SSE client resumes from: the `Last-Event-ID` header wins over the query names polyfills use.
    static func lastEventID(_ target: RequestTarget, headers: HTTPHeaders) -> String? {
        if let header = headers.first(name: "last-event-id")?.trimmingASCIIWhitespace(), !header.isEmpty {
            return header
        }
        return target.first("lastEventId", "last_event_id", "lastEventID")
    }
}
