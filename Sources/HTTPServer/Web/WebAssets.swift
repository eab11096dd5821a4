import NIOHTTP1

/// The browser demo and its client library, served at `/` (the page) and `/{file}` (`broker.js` and the page's
/// script, style sheet and icon).
///
/// The files live in `Sources/HTTPServer/Public` and are compiled into the binary (SwiftPM's `embedInCode`), so a
/// broker needs nothing beside its executable. `serve --web-root DIR` replaces them with DIR's copies, read once
/// at start-up, for editing the page without rebuilding. Answers carry an `ETag` (a `304` for a matching
/// `If-None-Match`) and `Cache-Control: no-cache`, so browsers revalidate cheaply and never run a stale
/// `broker.js`; the page's Content-Security-Policy allows only the broker's own scripts, styles and connections.
public struct WebAssets: Sendable {
    struct File: Sendable {
        let contentType: String
        let body: String
        let etag: String
    }

    /// The files served, by name; the page is `index.html`.
    public static let names = ["index.html", "broker.js", "app.js", "style.css", "favicon.svg"]

    private let files: [String: File]

    /// The copies compiled into the binary.
    public static let embedded = WebAssets(contents: [
        "index.html": PackageResources.index_html,
        "broker.js": PackageResources.broker_js,
        "app.js": PackageResources.app_js,
        "style.css": PackageResources.style_css,
        "favicon.svg": PackageResources.favicon_svg,
    ])

    /// Serves `contents` (file name to bytes, UTF-8 text) for the names it has, and the embedded copies for the
    /// others. Names not in ``names`` are ignored.
    public init(contents: [String: [UInt8]]) {
        var files: [String: File] = [:]
        for name in Self.names {
            guard let bytes = contents[name] else {
                files[name] = Self.embedded.files[name]
                continue
            }
            files[name] = File(
                contentType: Self.contentType(of: name), body: String(decoding: bytes, as: UTF8.self),
                etag: Self.etag(bytes))
        }
        self.files = files
    }

    /// Whether `/name` is one of the files.
    static func serves(_ name: String) -> Bool { Self.names.contains(name) }

    /// The answer to `GET /name` (`index.html` for `/`).
    func response(for name: String, ifNoneMatch: String?) -> HTTPResponse {
        guard let file = self.files[name] else { return .error(.notFound("/" + name)) }
        var headers = [
            ("ETag", file.etag), ("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff"),
        ]
        if name == "index.html" {
            headers += [
                ("Content-Security-Policy", Self.contentSecurityPolicy), ("Referrer-Policy", "no-referrer"),
                ("X-Frame-Options", "DENY"),
            ]
        }
        if let ifNoneMatch, ifNoneMatch.split(separator: ",").contains(where: { Self.matches($0, file.etag) }) {
            return HTTPResponse(status: .notModified, headers: headers, body: nil)
        }
        return HTTPResponse(status: .ok, headers: [("Content-Type", file.contentType)] + headers, body: file.body)
    }

    /// Scripts, styles and images from the broker only; no inline script; connections (fetch, EventSource,
    /// WebSocket) to the broker only.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    private static func matches(_ candidate: Substring, _ etag: String) -> Bool {
        var tag = String(candidate).trimmingASCIIWhitespace()
        if tag.hasPrefix("W/") { tag = String(tag.dropFirst(2)) }
        return tag == etag || tag == "*"
    }

    private static func contentType(of name: String) -> String {
        if name.hasSuffix(".html") { return "text/html; charset=utf-8" }
        if name.hasSuffix(".js") { return "text/javascript; charset=utf-8" }
        if name.hasSuffix(".css") { return "text/css; charset=utf-8" }
        if name.hasSuffix(".svg") { return "image/svg+xml" }
        return "application/octet-stream"
    }

    /// A strong validator: the FNV-1a hash of the bytes, quoted.
    private static func etag(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return "\"" + String(hash, radix: 16) + "\""
    }
}
