/// Presence: who is on a topic now, and the `join` / `leave` events that tell it live.
///
/// A subscriber (SSE or WebSocket) is a member of every non-reserved topic it names exactly; wildcard selectors
/// watch without being present. When it joins or leaves a topic `T`, the bus publishes an ephemeral event (live
/// only, never in history) to `$presence/T`:
/// ```
/// id: 1764500000000042
/// event: join
/// data: {"topic":"lobby","clientId":"0f3a…","name":"alice","transport":"sse","time":1764500000123,"members":3}
/// ```
/// `members` counts the topic's members after the change. A presence event costs nothing when nobody selects its
/// `$presence` topic: it is not made at all then.
public enum Presence {
    /// The reserved topic presence events for `topic` go to; nil for a topic too long to have one (over 246 bytes)
    /// or a reserved one.
    public static func topic(for topic: TopicName) -> TopicName? {
        guard !topic.isReserved, topic.value.utf8.count + Self.prefix.utf8.count <= TopicName.maxLength else {
            return nil
        }
        return TopicName(unchecked: Self.prefix + topic.value)
    }

    static let prefix = "$presence/"

    /// Whether a client joined or left.
    public enum Change: String, Sendable {
        case join
        case leave
    }

    /// The JSON data of a presence event.
    static func data(
        _ change: Change, topic: TopicName, clientID: ClientID, name: String?, transport: Transport,
        timeMilliseconds: UInt64, members: Int
    ) -> String {
        var json = "{\"topic\":"
        json.reserveCapacity(160)
        JSONValue.writeString(topic.value, to: &json)
        json += ",\"clientId\":"
        JSONValue.writeString(clientID.rawValue, to: &json)
        json += ",\"name\":"
        if let name { JSONValue.writeString(name, to: &json) } else { json += "null" }
        json += ",\"transport\":"
        JSONValue.writeString(transport.rawValue, to: &json)
        json += ",\"time\":\(timeMilliseconds),\"members\":\(members)}"
        return json
    }
}

/// One member of a topic, as `GET /api/topics/{topic}` lists it.
public struct TopicMember: Hashable, Sendable {
    public let clientID: ClientID
    public let name: String?
    public let transport: Transport
    public let sinceMilliseconds: UInt64
}

/// Who is on a topic now.
public struct TopicPresence: Hashable, Sendable {
    /// Earliest first; at most the broker's listing limit of them (``count`` has them all).
    public let members: [TopicMember]
    public let count: Int
    /// The last id issued when the list was taken: presence events up to it are reflected in the list, later ones
    /// are not yet.
    public let asOf: EventID
}
