import NIOHTTP1

/// Which browser origins may call the API, and the headers that tell them so.
///
/// `*` in the list allows every origin (answered with `Access-Control-Allow-Origin: *`, never with credentials);
/// otherwise a listed origin is echoed back with `Vary: Origin`. An unlisted origin gets no CORS headers, so the
/// browser blocks the response.
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
        if self.allowsAny {
            return [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", Self.exposedHeaders)]
        }
        guard self.origins.contains(origin) else { return [("Vary", "Origin")] }
        return [
            ("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
            ("Access-Control-Expose-Headers", Self.exposedHeaders),
        ]
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
