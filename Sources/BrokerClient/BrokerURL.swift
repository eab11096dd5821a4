/// An `http://` URL of a broker, split into what an HTTP/1.1 client needs: the host and port to connect to and
/// the request target (path and query) to send.
///
/// ```
/// http://broker.local:8080/prefix/api/events?topic=a%26b
///        └─ host ────┘ └port┘└─ path ───────┘ └ query ─┘
/// ```
/// Only plain `http` is spoken: `https` and other schemes are rejected with a ``BrokerURLError`` that says so,
/// as are credentials (`user@host`), empty hosts, bad ports and whitespace. A missing scheme means `http`, a
/// missing port 80, a missing path `/`; a `#fragment` is dropped. IPv6 literals go in brackets (`http://[::1]:8080`).
public struct BrokerURL: Hashable, Sendable, CustomStringConvertible {
    /// Where the CLI looks when neither `--url` nor `BROKER_URL` is given.
    public static let defaultString = "http://127.0.0.1:8080"
    /// The environment variable the CLI reads the broker URL from.
    public static let environmentVariable = "BROKER_URL"

    /// The host to connect to, without the brackets of an IPv6 literal.
    public var host: String
    public var port: Int
    /// The path, as sent (percent-encoded); always begins with `/`.
    public var path: String
    /// The query without its `?`, as sent (percent-encoded), or `nil` when there is none.
    public var query: String?

    /// Creates a URL from its parts; `path` and `query` must already be percent-encoded.
    public init(host: String, port: Int = 80, path: String = "/", query: String? = nil) {
        self.host = host
        self.port = port
        self.path = path.hasPrefix("/") ? path : "/" + path
        self.query = query
    }

    /// Parses `http://host[:port][/path][?query]`.
    /// - Throws: ``BrokerURLError`` naming what is wrong, for anything that is not such a URL.
    public init(_ string: String) throws(BrokerURLError) {
        let text = string.trimmingASCIIWhitespace()
        var rest = Substring(text)
        if let schemeEnd = text.firstRange(of: "://") {
            let scheme = text[..<schemeEnd.lowerBound].lowercased()
            guard scheme == "http" else {
                if scheme == "https" {
                    throw BrokerURLError(url: string, reason: "https is not supported; use an http:// URL")
                }
                throw BrokerURLError(url: string, reason: "unsupported scheme '\(scheme)'; use an http:// URL")
            }
            rest = text[schemeEnd.upperBound...]
        }
        guard !rest.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw BrokerURLError(url: string, reason: "it contains whitespace or control characters")
        }
        if let hash = rest.firstIndex(of: "#") {
            rest = rest[..<hash]
        }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var target = rest[authorityEnd...]

        guard !authority.contains("@") else {
            throw BrokerURLError(url: string, reason: "credentials in the URL are not supported")
        }
        let (host, portText) = try Self.splitAuthority(authority, url: string)
        self.host = host
        if let portText {
            guard !portText.isEmpty, portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                let port = Int(portText), (1...65535).contains(port)
            else {
                throw BrokerURLError(url: string, reason: "the port '\(portText)' is not a number from 1 to 65535")
            }
            self.port = port
        } else {
            self.port = 80
        }

        if let questionMark = target.firstIndex(of: "?") {
            let query = target[target.index(after: questionMark)...]
            self.query = query.isEmpty ? nil : String(query)
            target = target[..<questionMark]
        } else {
            self.query = nil
        }
        self.path = target.isEmpty ? "/" : String(target)
    }

    /// What goes after the method in the request line: the path and, if any, `?` and the query.
    public var requestTarget: String {
        guard let query = self.query else { return self.path }
        return self.path + "?" + query
    }

    /// The value of the `Host` header: the host (bracketed if IPv6) and the port unless it is 80.
    public var hostHeader: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return self.port == 80 ? host : "\(host):\(self.port)"
    }

    public var description: String { "http://\(self.hostHeader)\(self.requestTarget)" }

    /// This URL with `path` appended to its path (`http://h/prefix` + `/api/events` is `http://h/prefix/api/events`),
    /// keeping the query. `path` must already be percent-encoded.
    public func appendingPath(_ path: String) -> BrokerURL {
        var base = Substring(self.path)
        while base.hasSuffix("/") {
            base = base.dropLast()
        }
        var tail = Substring(path)
        while tail.hasPrefix("/") {
            tail = tail.dropFirst()
        }
        var copy = self
        copy.path = base + "/" + tail
        return copy
    }

    /// This URL with `name=value` added to the end of its query, both percent-encoded.
    public func appendingQueryItem(name: String, value: String) -> BrokerURL {
        self.appendingQueryItems([(name: name, value: value)])
    }

    /// This URL with the items added to the end of its query in order, each `name=value` percent-encoded and
    /// joined with `&`; names may repeat (`topic=a&topic=b`).
    public func appendingQueryItems(_ items: [(name: String, value: String)]) -> BrokerURL {
        guard !items.isEmpty else { return self }
        let added = items.map { Self.percentEncoded($0.name) + "=" + Self.percentEncoded($0.value) }
        var copy = self
        copy.query = ([self.query].compactMap { $0 } + added).joined(separator: "&")
        return copy
    }

    /// `string` encoded for a query name or value: UTF-8 bytes other than letters, digits and `-._~/:@$*!'(),`
    /// become `%XX`, so `&`, `=`, `+`, `;`, `#`, `?`, `%` and spaces never change the query's meaning.
    public static func percentEncoded(_ string: String) -> String {
        var encoded: [UInt8] = []
        encoded.reserveCapacity(string.utf8.count)
        let hexDigits = Array("0123456789ABCDEF".utf8)
        for byte in string.utf8 {
            if Self.isQuerySafe(byte) {
                encoded.append(byte)
            } else {
                encoded.append(UInt8(ascii: "%"))
                encoded.append(hexDigits[Int(byte >> 4)])
                encoded.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: encoded, as: UTF8.self)
    }

    private static func isQuerySafe(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "-._~/:@$*!'(),".utf8.contains(byte)
        }
    }

    /// Splits `host[:port]` or `[v6]:port`; the port is `nil` when absent.
    private static func splitAuthority(_ authority: Substring, url: String) throws(BrokerURLError)
        -> (host: String, port: Substring?)
    {
        let host: Substring
        let port: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw BrokerURLError(url: url, reason: "the IPv6 address has no closing ']'")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let afterHost = authority[authority.index(after: close)...]
            if afterHost.isEmpty {
                port = nil
            } else if afterHost.hasPrefix(":") {
                port = afterHost.dropFirst()
            } else {
                throw BrokerURLError(url: url, reason: "unexpected '\(afterHost)' after the IPv6 address")
            }
            guard !host.isEmpty, host.utf8.allSatisfy({ Self.isIPv6Byte($0) }), host.contains(":") else {
                throw BrokerURLError(url: url, reason: "'[\(host)]' is not an IPv6 address")
            }
        } else {
            guard authority.count(where: { $0 == ":" }) <= 1 else {
                throw BrokerURLError(url: url, reason: "an IPv6 address must be in brackets, as in http://[::1]:8080")
            }
            let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            host = parts[0]
            port = parts.count > 1 ? parts[1] : nil
            guard !host.isEmpty else {
                throw BrokerURLError(url: url, reason: "the host is missing")
            }
            guard host.utf8.allSatisfy({ Self.isHostByte($0) }) else {
                throw BrokerURLError(url: url, reason: "'\(host)' is not a host name or IPv4 address")
            }
        }
        return (String(host), port)
    }

    private static func isHostByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    private static func isIPv6Byte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: ":"), UInt8(ascii: "."):
            return true
        default:
            return false
        }
    }
}

/// Why a string is not a ``BrokerURL``; its description is a sentence fit for a command-line error.
public struct BrokerURLError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The string that was given.
    public var url: String
    /// What is wrong with it.
    public var reason: String

    public init(url: String, reason: String) {
        self.url = url
        self.reason = reason
    }

    public var description: String { "Invalid broker URL '\(self.url)': \(self.reason)." }
}

extension String {
    fileprivate func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = self.firstIndex(where: { !isSpace($0) }),
            let last = self.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(self[first...last])
    }
}
