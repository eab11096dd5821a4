extension BrokerURL {
    /// Parses a WebSocket URL, `ws://host[:port][/path][?query]`, into the same parts as its `http://` twin, since
    /// the upgrade is an HTTP/1.1 request to that host, port and target. `http://` and a missing scheme are
    /// accepted too; `wss://` is refused like `https://`.
    /// - Throws: ``BrokerURLError`` naming what is wrong.
    public init(webSocket string: String) throws(BrokerURLError) {
        var text = Substring(string)
        while let first = text.first, first == " " || first == "\t" || first == "\n" || first == "\r" {
            text = text.dropFirst()
        }
        if let schemeEnd = text.firstRange(of: "://") {
            switch text[..<schemeEnd.lowerBound].lowercased() {
            case "ws", "http":
                text = text[schemeEnd.upperBound...]
            case "wss", "https":
                throw BrokerURLError(url: string, reason: "wss is not supported; use a ws:// URL")
            case let scheme:
                throw BrokerURLError(url: string, reason: "unsupported scheme '\(scheme)'; use a ws:// URL")
            }
        }
        do {
            try self.init("http://" + text)
        } catch {
            throw BrokerURLError(url: string, reason: error.reason)
        }
    }

    /// The URL as a WebSocket client shows it: `ws://host[:port]/path?query`.
    public var webSocketDescription: String { "ws://\(self.hostHeader)\(self.requestTarget)" }
}
