import NIOHTTP1

/// The broker's endpoints, one case each, and how a request path maps to them.
///
/// `routes` is the single list of what is served; a contract test checks it against openapi.yaml.
enum Route: Hashable, Sendable, CaseIterable {
    case events
    case publish
    case broadcast
    case message
    case health
    case topics
    case topic
    case history
    case webSocket
    case metrics
    /// The browser demo.
    case page
    /// `broker.js` and the demo's other files (see `WebAssets`).
    case asset

    /// The path as openapi.yaml writes it.
    var pathTemplate: String {
        switch self {
        case .events: return "/api/events"
        case .publish: return "/api/events/publish"
        case .broadcast: return "/api/messages/broadcast"
        case .message: return "/api/message"
        case .health: return "/api/health"
        case .topics: return "/api/topics"
        case .topic: return "/api/topics/{topic}"
        case .history: return "/api/events/history"
        case .webSocket: return "/api/ws"
        case .metrics: return "/metrics"
        case .page: return "/"
        case .asset: return "/{file}"
        }
    }

    /// Methods served besides OPTIONS, which every route answers (CORS preflight).
    var methods: [HTTPMethod] {
        switch self {
        case .page, .asset: return Self.getAndHead
        default: return self.acceptsBody ? Self.post : Self.get
        }
    }

    /// `methods` and OPTIONS. Shared arrays: this is read for every request.
    var allowedMethods: [HTTPMethod] {
        switch self {
        case .page, .asset: return Self.getHeadAndOptions
        default: return self.acceptsBody ? Self.postAndOptions : Self.getAndOptions
        }
    }

    /// Whether the route reads a request body (its method is POST).
    var acceptsBody: Bool {
        switch self {
        case .events, .health, .topics, .topic, .history, .webSocket, .metrics, .page, .asset: return false
        case .publish, .broadcast, .message: return true
        }
    }

    private static let get: [HTTPMethod] = [.GET]
    private static let post: [HTTPMethod] = [.POST]
    private static let getAndOptions: [HTTPMethod] = [.GET, .OPTIONS]
    private static let postAndOptions: [HTTPMethod] = [.POST, .OPTIONS]
    private static let getAndHead: [HTTPMethod] = [.GET, .HEAD]
    private static let getHeadAndOptions: [HTTPMethod] = [.GET, .HEAD, .OPTIONS]
}

/// Maps a decoded path to a route and its path parameter.
enum Router {
    static let topicPrefix = "/api/topics/"

    struct Match: Hashable, Sendable {
        let route: Route
        /// The `{topic}` of `/api/topics/{topic}`, percent-decoded.
        let topic: String?
        /// The file a `.page` or `.asset` route serves.
        var file: String? = nil
    }

    static func match(path: Substring) -> Match? {
        switch path {
        case "/api/events": return Match(route: .events, topic: nil)
        case "/api/events/publish": return Match(route: .publish, topic: nil)
        case "/api/messages/broadcast": return Match(route: .broadcast, topic: nil)
        case "/api/message": return Match(route: .message, topic: nil)
        case "/api/health": return Match(route: .health, topic: nil)
        case "/api/topics": return Match(route: .topics, topic: nil)
        case "/api/events/history": return Match(route: .history, topic: nil)
        case "/api/ws": return Match(route: .webSocket, topic: nil)
        case "/metrics": return Match(route: .metrics, topic: nil)
        case "/": return Match(route: .page, topic: nil, file: "index.html")
        default:
            if path.utf8.dropFirst().allSatisfy({ $0 != UInt8(ascii: "/") }),
                WebAssets.serves(String(path.dropFirst())),
                path != "/index.html"
            {
                return Match(route: .asset, topic: nil, file: String(path.dropFirst()))
            }
            guard path.hasPrefix(Self.topicPrefix), path.count > Self.topicPrefix.count else { return nil }
            return Match(route: .topic, topic: String(path.dropFirst(Self.topicPrefix.count)))
        }
    }
}
