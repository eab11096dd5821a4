import NIOHTTP1

/// Which browser origins may call the API, and the headers that tell them so.
///
/// A listed origin is echoed back with `Vary: Origin` and `Access-Control-Allow-Credentials: true`, so a page on it
/// may send cookies (a token in a cookie). `*` in the list allows every other origin too, answered with
/// `Access-Control-Allow-Origin: *` and never with credentials. An origin neither listed nor covered by `*` gets no
/// CORS headers, so the browser blocks the response, and may not open a WebSocket (browsers send `Origin` on the
/// upgrade but do not apply CORS to it, so the server checks it: this stops cross-site WebSocket hijacking).
struct CORSPolicy: Sendable {
    static let allowedRequestHeaders = "Content-Type, Authorization, Last-Event-ID, Idempotency-Key, Cache-Control"
    static let exposedHeaders = "Idempotent-Replayed, Retry-After"

    let allowsAny: Bool
    let origins: Set<String>

    init(allowedOrigins: [String]) {
        self.allowsAny = allowedOrigins.contains("*")
        self.origins = Set(allowedOrigins.filter { $0 != "*" })
    }

    /// Headers for an ordinary response to a request from `origin`.
    func headers(origin: String?) -> [(String, String)] {
        guard let origin else { return [] }
        if self.origins.contains(origin) {
            return [
                ("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
                ("Access-Control-Allow-Credentials", "true"), ("Access-Control-Expose-Headers", Self.exposedHeaders),
            ]
        }
        if self.allowsAny {
            return [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", Self.exposedHeaders)]
        }
        return [("Vary", "Origin")]
    }

    /// Whether a WebSocket upgrade from `origin` is allowed: no `Origin` (not a browser), a listed one, or any with
    /// `*`.
    func allowsWebSocket(from origin: String?) -> Bool {
        guard let origin else { return true }
        return self.allowsAny || self.origins.contains(origin)
    }

    /// Headers for an `OPTIONS` answer on a route serving `methods`.
    func preflightHeaders(origin: String?, methods: [HTTPMethod]) -> [(String, String)] {
        let allow = methods.map(\.rawValue).joined(separator: ", ")
        var headers = [("Allow", allow)]
        let base = self.headers(origin: origin)
        guard base.contains(where: { $0.0 == "Access-Control-Allow-Origin" }) else { return headers + base }
        headers += base.filter { $0.0 != "Access-Control-Expose-Headers" }
        headers += [
            ("Access-Control-Allow-Methods", allow),
            ("Access-Control-Allow-Headers", Self.allowedRequestHeaders),
            ("Access-Control-Max-Age", "600"),
        ]
        return headers
    }
}
