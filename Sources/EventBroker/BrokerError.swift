/// An error the bus reports to its callers; the HTTP layer maps each code to a status and a JSON body.
///
/// Codes are `static let`s over a private enum so new ones can be added without breaking exhaustive switches.
public struct BrokerError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case invalidTopic = "invalid_topic"
            case invalidSelector = "invalid_selector"
            case reservedTopic = "reserved_topic"
            case tooManyTopics = "too_many_topics"
            case invalidEvent = "invalid_event"
            case emptyData = "empty_data"
            case clientNotFound = "client_not_found"
            case topicNotFound = "topic_not_found"
            case shuttingDown = "shutting_down"
            case storeUnavailable = "store_unavailable"
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        public static let invalidTopic = Code(.invalidTopic)
        public static let invalidSelector = Code(.invalidSelector)
        public static let reservedTopic = Code(.reservedTopic)
        public static let tooManyTopics = Code(.tooManyTopics)
        public static let invalidEvent = Code(.invalidEvent)
        public static let emptyData = Code(.emptyData)
        public static let clientNotFound = Code(.clientNotFound)
        public static let topicNotFound = Code(.topicNotFound)
        public static let shuttingDown = Code(.shuttingDown)
        /// The durable store could not commit the event (a full disk, an I/O error); retrying may succeed.
        public static let storeUnavailable = Code(.storeUnavailable)

        /// The snake_case code clients see in `{"error": {"code": …}}`.
        public var description: String { self.base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(self.code): \(self.message)" }
}
