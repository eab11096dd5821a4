/// A request target: its percent-decoded path, and its query parameters, read where they are asked for.
///
/// The path is a slice of the target, copied only when it holds escapes. The query stays text and is walked on
/// demand: a request costs no list of parameters, and no string for a parameter it never reads. Query values decode
/// `+` as a space and `%XX` escapes; repeated names are kept in order (`topic=a&topic=b`). Names are matched by their
/// decoded bytes.
struct RequestTarget: Sendable {
    let path: Substring
    /// The query's bytes, still encoded: after the `?`, up to any `#`.
    let queryText: Substring.UTF8View

    init(uri: String) {
        // One scan over the target's bytes finds where the path and the query end; a path with escapes is decoded.
        var text = uri
        let (pathEnd, queryEnd, decodedPath) = text.withUTF8 { bytes -> (Int, Int, String?) in
            var index = 0
            var hasEscapes = false
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") { break }
                if byte == UInt8(ascii: "%") { hasEscapes = true }
                index += 1
            }
            let decoded =
                hasEscapes ? Self.decode(UnsafeBufferPointer(rebasing: bytes[..<index]), plusIsSpace: false) : nil
            guard index < bytes.count, bytes[index] == UInt8(ascii: "?") else { return (index, index, decoded) }
            return (index, bytes[(index + 1)...].firstIndex(of: UInt8(ascii: "#")) ?? bytes.count, decoded)
        }
        let utf8 = text.utf8
        let pathEndIndex = utf8.index(utf8.startIndex, offsetBy: pathEnd)
        self.path = decodedPath.map { Substring($0) } ?? text[..<pathEndIndex]
        if queryEnd > pathEnd {
            let queryStart = utf8.index(after: pathEndIndex)
            self.queryText = text[queryStart..<utf8.index(pathEndIndex, offsetBy: queryEnd - pathEnd)].utf8
        } else {
            self.queryText = Substring().utf8
        }
    }

    /// Every parameter, decoded, in order.
    var query: [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        self.forEachParameterBytes { pairs.append((Self.decodeForm(bytes: $0), Self.decodeForm(bytes: $1))) }
        return pairs
    }

    /// Calls `body` with each parameter as it is written (still encoded), in order, as bytes: names are matched
    /// against what is asked for, and only the values used are decoded (``decodeForm(bytes:)``).
    func forEachParameterBytes(
        _ body: (_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) -> Void
    ) {
        var query = Substring(self.queryText)
        query.withUTF8 { Self.forEachPair(in: $0, body) }
    }

    /// Every value of `name`, in order.
    func values(_ name: String) -> [String] {
        var values: [String] = []
        self.forEachParameterBytes { rawName, rawValue in
            if Self.decodes(rawName, to: name) { values.append(Self.decodeForm(bytes: rawValue)) }
        }
        return values
    }

    /// The first value of any of `names`, in the order of `names`.
    func first(_ names: String...) -> String? {
        for name in names {
            var value: String?
            self.forEachParameterBytes { rawName, rawValue in
                if value == nil, Self.decodes(rawName, to: name) { value = Self.decodeForm(bytes: rawValue) }
            }
            if let value { return value }
        }
        return nil
    }

    func contains(_ name: String) -> Bool { self.contains(name, or: name) }

    /// Whether `name` or `other` is given, in one pass over the query (not variadic: a variadic list is an
    /// allocation per call).
    func contains(_ name: String, or other: String) -> Bool {
        var found = false
        self.forEachParameterBytes { rawName, _ in
            if !found, Self.decodes(rawName, to: name) || Self.decodes(rawName, to: other) { found = true }
        }
        return found
    }

    /// Whether the encoded form component `component` decodes to `name`'s bytes.
    private static func decodes(_ component: UnsafeBufferPointer<UInt8>, to name: String) -> Bool {
        var name = name
        guard Self.needsDecoding(component) else { return name.withUTF8 { component.elementsEqual($0) } }
        var decoded = Self.decode(component, plusIsSpace: true)
        return decoded.withUTF8 { decodedBytes in name.withUTF8 { decodedBytes.elementsEqual($0) } }
    }

    /// Parses `application/x-www-form-urlencoded` text (also the query string's format), decoded.
    static func parseForm(_ text: Substring) -> [(name: String, value: String)] {
        var text = text
        return text.withUTF8 { bytes in
            var pairs: [(name: String, value: String)] = []
            let end = bytes.firstIndex(of: UInt8(ascii: "#")) ?? bytes.count
            Self.forEachPair(in: UnsafeBufferPointer(rebasing: bytes[..<end])) {
                pairs.append((Self.decodeForm(bytes: $0), Self.decodeForm(bytes: $1)))
            }
            return pairs
        }
    }

    /// A form component's bytes decoded: `+` as a space, `%XX` escapes.
    static func decodeForm(bytes: UnsafeBufferPointer<UInt8>) -> String {
        guard Self.needsDecoding(bytes) else { return String(decoding: bytes, as: UTF8.self) }
        return Self.decode(bytes, plusIsSpace: true)
    }

    /// The `name=value` pairs of form text, split on bytes (`&` and `=` are ASCII, and byte splitting is what the
    /// format means), still encoded. Empty pairs are skipped; a pair without `=` has an empty value.
    private static func forEachPair(
        in bytes: UnsafeBufferPointer<UInt8>,
        _ body: (_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) -> Void
    ) {
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "&") { end += 1 }
            if end > start {
                var equals = start
                while equals < end, bytes[equals] != UInt8(ascii: "=") { equals += 1 }
                body(
                    UnsafeBufferPointer(rebasing: bytes[start..<equals]),
                    UnsafeBufferPointer(rebasing: bytes[min(equals + 1, end)..<end]))
            }
            start = end + 1
        }
    }

    /// Whether a form component has escapes or `+` to decode.
    private static func needsDecoding(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.contains { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }
    }

    /// Decodes `%XX` escapes (and `+` when asked). Malformed escapes are kept as they are; bytes that do not form
    /// UTF-8 become U+FFFD, which no topic or id accepts, so they are refused downstream.
    private static func decode(_ text: UnsafeBufferPointer<UInt8>, plusIsSpace: Bool) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        var index = 0
        while index < text.count {
            let byte = text[index]
            index += 1
            if byte == UInt8(ascii: "+") && plusIsSpace {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), index + 1 < text.count, let high = text[index].hexDigitValue,
                let low = text[index + 1].hexDigitValue
            {
                bytes.append(high << 4 | low)
                index += 2
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
