/// What a subscriber asks for: an exact topic name, or a pattern in which `*` matches exactly one segment and a
/// final `**` matches one or more segments.
///
/// ```
/// chat/lobby      matches chat/lobby only
/// chat/*          matches chat/lobby, not chat or chat/a/b
/// chat/**         matches chat/a and chat/a/b, not chat
/// **              matches every topic that does not begin with `$`
/// ```
/// A pattern whose first segment is a wildcard never matches a reserved (`$`) topic; `$presence/*` does.
public struct TopicSelector: Hashable, Sendable, CustomStringConvertible {
    enum Segment: Hashable, Sendable {
        case literal(String)
        case one
        case rest
    }

    public let value: String
    /// The exact topic when the selector has no wildcard.
    public let exactTopic: TopicName?
    let segments: [Segment]

    public init(_ value: String) throws(BrokerError) {
        if TopicName.isValid(value) {
            self.value = value
            self.exactTopic = TopicName(unchecked: value)
            self.segments = []
            return
        }
        guard let segments = Self.parsePattern(value) else {
            throw BrokerError(
                .invalidSelector,
                "Invalid topic selector '\(value.prefix(80))': use a topic name, '*' for one segment or a final '**' for one or more."
            )
        }
        self.value = value
        self.exactTopic = nil
        self.segments = segments
    }

    public init(topic: TopicName) {
        self.value = topic.value
        self.exactTopic = topic
        self.segments = []
    }

    public var isWildcard: Bool { self.exactTopic == nil }
    public var description: String { self.value }

    /// Whether `topic` is selected. Allocation-free: it walks the topic's UTF-8 bytes once.
    public func matches(_ topic: TopicName) -> Bool {
        if let exact = self.exactTopic { return exact == topic }
        if topic.isReserved {
            guard case .literal = self.segments.first else { return false }
        }
        let bytes = topic.value.utf8
        var index = bytes.startIndex
        for (position, segment) in self.segments.enumerated() {
            if position > 0 {
                guard index != bytes.endIndex, bytes[index] == UInt8(ascii: "/") else { return false }
                index = bytes.index(after: index)
            }
            guard index != bytes.endIndex else { return false }
            switch segment {
            case .rest:
                return true
            case .one:
                while index != bytes.endIndex && bytes[index] != UInt8(ascii: "/") {
                    index = bytes.index(after: index)
                }
            case .literal(let literal):
                for byte in literal.utf8 {
                    guard index != bytes.endIndex, bytes[index] == byte else { return false }
                    index = bytes.index(after: index)
                }
            }
        }
        return index == bytes.endIndex
    }

    private static func parsePattern(_ value: String) -> [Segment]? {
        let bytes = value.utf8
        guard !bytes.isEmpty, bytes.count <= TopicName.maxLength else { return nil }
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        var segments: [Segment] = []
        segments.reserveCapacity(parts.count)
        for (position, part) in parts.enumerated() {
            switch part {
            case "*":
                segments.append(.one)
            case "**":
                guard position == parts.count - 1 else { return nil }
                segments.append(.rest)
            default:
                guard !part.isEmpty, part.utf8.allSatisfy(TopicName.isNameByte) else { return nil }
                segments.append(.literal(String(part)))
            }
        }
        return segments
    }
}
