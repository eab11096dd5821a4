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
        // One scan over the target's bytes finds where the path and the query end, and whether the path has escapes.
        var text = uri
        let (pathEnd, queryEnd, pathHasEscapes) = text.withUTF8 { bytes -> (Int, Int, Bool) in
            var index = 0
            var hasEscapes = false
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") { break }
                if byte == UInt8(ascii: "%") { hasEscapes = true }
                index += 1
            }
            guard index < bytes.count, bytes[index] == UInt8(ascii: "?") else { return (index, index, hasEscapes) }
            let queryEnd = bytes[(index + 1)...].firstIndex(of: UInt8(ascii: "#")) ?? bytes.count
            return (index, queryEnd, hasEscapes)
        }
        let utf8 = text.utf8
        let pathEndIndex = utf8.index(utf8.startIndex, offsetBy: pathEnd)
        let path = text[..<pathEndIndex]
        self.path = pathHasEscapes ? Substring(Self.decode(path.utf8, plusIsSpace: false)) : path
        if queryEnd > pathEnd {
            let queryStart = utf8.index(after: pathEndIndex)
            self.queryText = text[queryStart..<utf8.index(pathEndIndex, offsetBy: queryEnd - pathEnd)].utf8
        } else {
            self.queryText = Substring().utf8
        }
    }

    /// Every parameter, decoded, in order.
    var query: [(name: String, value: String)] {
        self.parameters.map { (Self.decodeForm($0.name), Self.decodeForm($0.value)) }
    }

    /// The parameters as they are written (still encoded), in order: decode what is used with ``decodeForm(_:)``.
    var parameters: FormParameters { FormParameters(self.queryText) }

    /// Calls `body` with each parameter as it is written (still encoded), in order, as bytes: for the hot publish
    /// path, which matches names against literals and decodes values straight from the bytes (``decodeForm(bytes:)``).
    func forEachParameterBytes(
        _ body: (_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) -> Void
    ) {
        func walk(_ bytes: UnsafeBufferPointer<UInt8>) {
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count, bytes[end] != UInt8(ascii: "&") { end += 1 }
                if end > start {
                    var equals = start
                    while equals < end, bytes[equals] != UInt8(ascii: "=") { equals += 1 }
                    let valueStart = min(equals + 1, end)
                    body(
                        UnsafeBufferPointer(rebasing: bytes[start..<equals]),
                        UnsafeBufferPointer(rebasing: bytes[valueStart..<end]))
                }
                start = end + 1
            }
        }
        if self.queryText.withContiguousStorageIfAvailable(walk) == nil {
            Array(self.queryText).withUnsafeBufferPointer(walk)
        }
    }

    /// A form component's bytes decoded: `+` as a space, `%XX` escapes.
    static func decodeForm(bytes: UnsafeBufferPointer<UInt8>) -> String {
        guard bytes.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else {
            return String(decoding: bytes, as: UTF8.self)
        }
        return Self.decode(bytes, plusIsSpace: true)
    }

    /// Every value of `name`, in order.
    func values(_ name: String) -> [String] {
        self.parameters.filter { Self.decodes($0.name, to: name) }.map { Self.decodeForm($0.value) }
    }

    /// The first value of any of `names`, in the order of `names`.
    func first(_ names: String...) -> String? {
        for name in names {
            if let parameter = self.parameters.first(where: { Self.decodes($0.name, to: name) }) {
                return Self.decodeForm(parameter.value)
            }
        }
        return nil
    }

    func contains(_ name: String) -> Bool { self.parameters.contains { Self.decodes($0.name, to: name) } }

    /// Whether `name` or `other` is given, in one pass over the query (not variadic: a variadic list is an
    /// allocation per call).
    func contains(_ name: String, or other: String) -> Bool {
        self.parameters.contains { Self.decodes($0.name, to: name) || Self.decodes($0.name, to: other) }
    }

    /// Whether the encoded form component `component` decodes to `name`'s bytes.
    static func decodes(_ component: Substring.UTF8View, to name: String) -> Bool {
        guard Self.needsDecoding(component, plusIsSpace: true) else { return component.bytesEqual(name[...].utf8) }
        return Self.decode(component, plusIsSpace: true).utf8.elementsEqual(name.utf8)
    }

    /// Parses `application/x-www-form-urlencoded` text (also the query string's format), decoded.
    static func parseForm(_ text: Substring) -> [(name: String, value: String)] {
        let utf8 = text.utf8
        return FormParameters(utf8[..<(utf8.firstIndex(of: UInt8(ascii: "#")) ?? utf8.endIndex)]).map {
            (Self.decodeForm($0.name), Self.decodeForm($0.value))
        }
    }

    /// A form component decoded: `+` as a space, `%XX` escapes.
    static func decodeForm(_ component: Substring.UTF8View) -> String {
        guard Self.needsDecoding(component, plusIsSpace: true) else { return String(Substring(component)) }
        return Self.decode(component, plusIsSpace: true)
    }

    private static func needsDecoding(_ text: Substring.UTF8View, plusIsSpace: Bool) -> Bool {
        text.containsByte { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }
    }

    /// Decodes `%XX` escapes (and `+` when asked). Malformed escapes are kept as they are; bytes that do not form
    /// UTF-8 become U+FFFD, which no topic or id accepts, so they are refused downstream.
    private static func decode(_ text: Substring.UTF8View, plusIsSpace: Bool) -> String {
        text.withContiguousStorageIfAvailable { Self.decode($0, plusIsSpace: plusIsSpace) }
            ?? Array(text).withUnsafeBufferPointer { Self.decode($0, plusIsSpace: plusIsSpace) }
    }

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

/// The `name=value` pairs of form text, split on bytes (`&` and `=` are ASCII, and byte splitting is what the format
/// means), still encoded. Empty pairs are skipped; a pair without `=` has an empty value.
struct FormParameters: Sequence, IteratorProtocol {
    private var rest: Substring.UTF8View

    init(_ text: Substring.UTF8View) {
        self.rest = text
    }

    mutating func next() -> (name: Substring.UTF8View, value: Substring.UTF8View)? {
        while !self.rest.isEmpty {
            let pairEnd = self.rest.firstIndexOfByte(where: { $0 == UInt8(ascii: "&") }) ?? self.rest.endIndex
            let pair = self.rest[..<pairEnd]
            self.rest =
                pairEnd == self.rest.endIndex ? self.rest[pairEnd...] : self.rest[self.rest.index(after: pairEnd)...]
            guard !pair.isEmpty else { continue }
            guard let equals = pair.firstIndexOfByte(where: { $0 == UInt8(ascii: "=") }) else {
                return (pair, pair[pair.endIndex...])
            }
            return (pair[..<equals], pair[pair.index(after: equals)...])
        }
        return nil
    }
}

/// Scans over a native string's contiguous bytes: walking a UTF-8 view index by index costs a call per byte.
extension Substring.UTF8View {
    /// The first byte `isMatch` accepts.
    func firstIndexOfByte(where isMatch: (UInt8) -> Bool) -> Index? {
        guard let offset = self.withContiguousStorageIfAvailable({ $0.firstIndex(where: isMatch) }) else {
            return self.firstIndex(where: isMatch)
        }
        return offset.map { self.index(self.startIndex, offsetBy: $0) }
    }

    /// Whether any byte is one `isMatch` accepts.
    func containsByte(where isMatch: (UInt8) -> Bool) -> Bool {
        self.withContiguousStorageIfAvailable { $0.contains(where: isMatch) } ?? self.contains(where: isMatch)
    }

    /// Whether both hold the same bytes.
    func bytesEqual(_ other: Substring.UTF8View) -> Bool {
        guard self.count == other.count else { return false }
        let equal = self.withContiguousStorageIfAvailable { mine in
            other.withContiguousStorageIfAvailable { theirs in mine.elementsEqual(theirs) }
        }
        return (equal ?? nil) ?? self.elementsEqual(other)
    }
}
