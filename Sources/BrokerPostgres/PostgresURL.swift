import EventBroker

/// Where a cluster's PostgreSQL is, from `postgres://USER:PASSWORD@HOST:PORT/DATABASE`.
///
/// ```
/// postgres://broker:secret@db.internal:5432/events     every part given
/// postgresql://broker@127.0.0.1/events                 no password (trust or peer authentication), port 5432
/// postgres://127.0.0.1:55432/postgres                 user "postgres"
/// ```
/// User and password may be percent-encoded (`%40` for `@`). The only query parameter read is `sslmode=disable`,
/// the default: connections are not encrypted, so keep the database on a private network.
public struct PostgresURL: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String

    /// - Throws: `StoreError` (`unwritable`) naming what is wrong with `text`.
    public init(_ text: String) throws(StoreError) {
        func invalid(_ why: String) -> StoreError {
            StoreError(
                .unwritable, "Invalid PostgreSQL URL (\(why)): expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        var rest = Substring(text)
        if rest.hasPrefix("postgres://") {
            rest = rest.dropFirst("postgres://".count)
        } else if rest.hasPrefix("postgresql://") {
            rest = rest.dropFirst("postgresql://".count)
        } else {
            throw invalid("it must begin with postgres://")
        }
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var user: Substring = "postgres"
        var password: Substring?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = userInfo[..<colon]
                password = userInfo[userInfo.index(after: colon)...]
            } else {
                user = userInfo
            }
        }
        var port = 5432
        var host = rest
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw invalid("unclosed '[' in the host") }
            let after = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let number = Int(after.dropFirst()) else { throw invalid("bad port") }
                port = number
            }
        } else if let colon = host.lastIndex(of: ":") {
            guard let number = Int(host[host.index(after: colon)...]) else { throw invalid("bad port") }
            port = number
            host = host[..<colon]
        }
        guard !host.isEmpty else { throw invalid("no host") }
        guard (1...65535).contains(port) else { throw invalid("port \(port) is out of range") }
        for parameter in query.split(separator: "&") {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.first == "sslmode" else { continue }
            guard pair.count == 2, pair[1] == "disable" else {
                throw invalid("only sslmode=disable is supported; reach the database over a private network")
            }
        }
        guard let username = Self.percentDecoded(user), !username.isEmpty else { throw invalid("bad user name") }
        self.host = String(host)
        self.port = port
        self.username = username
        if let password {
            guard let decoded = Self.percentDecoded(password) else { throw invalid("bad password encoding") }
            self.password = decoded
        }
        let database = path.isEmpty ? username : Self.percentDecoded(path)
        guard let database, !database.isEmpty else { throw invalid("bad database name") }
        self.database = database
    }

    /// The URL without its password, for logs and errors.
    public var description: String { "postgres://\(self.username)@\(self.host):\(self.port)/\(self.database)" }

    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue)
            else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
