/// Identifies one connected subscriber (an SSE stream, a WebSocket, a long poll) for direct messages and logs.
public struct ClientID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// A fresh random id: 15 lowercase hex digits (60 random bits). Fifteen bytes is what Swift stores inline in a
    /// `String`, so an id costs no allocation in each table that holds it.
    public static func random() -> ClientID {
        var generator = SystemRandomNumberGenerator()
        let value = (generator.next() as UInt64) >> 4
        let hex = String(value, radix: 16)
        return ClientID(rawValue: String(repeating: "0", count: 15 - hex.count) + hex)
    }

    public var description: String { self.rawValue }
}

/// How a subscriber is connected.
public enum Transport: String, Hashable, Sendable, CaseIterable {
    case sse
    case webSocket = "ws"
    case longPoll
}
