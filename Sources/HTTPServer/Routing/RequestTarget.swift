/// A request target split into its percent-decoded path and query parameters.
///
/// Query values decode `+` as a space and `%XX` escapes; repeated names are kept in order (`topic=a&topic=b`).
struct RequestTarget: Sendable {
    let path: String
    let query: [(name: String, value: String)]

    init(uri: String) {
        let utf8 = uri.utf8
        let pathEnd = utf8.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) ?? utf8.endIndex
        self.path = Self.percentDecode(String(uri[..<pathEnd]), plusIsSpace: false)
        if pathEnd != utf8.endIndex, utf8[pathEnd] == UInt8(ascii: "?") {
            self.query = Self.parseForm(uri[uri.index(after: pathEnd)...])
        } else {
            self.query = []
        }
    }

    /// Every value of `name`, in order.
    func values(_ name: String) -> [String] { self.query.filter { $0.name == name }.map(\.value) }

    /// The first value of any of `names`, in the order of `names`.
    func first(_ names: String...) -> String? {
        for name in names { if let value = self.query.first(where: { $0.name == name })?.value { return value } }
        return nil
    }

    func contains(_ name: String) -> Bool { self.query.contains { $0.name == name } }

    /// Parses `application/x-www-form-urlencoded` text (also the query string's format). Splits on bytes, not
    /// characters: `&` and `=` are ASCII, and byte splitting is what the format means.
    static func parseForm(_ text: Substring) -> [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        let utf8 = text.utf8
        var end = utf8.firstIndex(of: UInt8(ascii: "#")) ?? utf8.endIndex
        var start = utf8.startIndex
        if start == end { return result }
        while start < end {
            let pairEnd = utf8[start..<end].firstIndex(of: UInt8(ascii: "&")) ?? end
            if pairEnd > start {
                let pair = utf8[start..<pairEnd]
                if let equals = pair.firstIndex(of: UInt8(ascii: "=")) {
                    let name = Substring(utf8[start..<equals])
                    let value = Substring(utf8[utf8.index(after: equals)..<pairEnd])
                    result.append(
                        (
                            Self.percentDecode(String(name), plusIsSpace: true),
                            Self.percentDecode(String(value), plusIsSpace: true)
                        ))
                } else {
                    result.append((Self.percentDecode(String(Substring(pair)), plusIsSpace: true), ""))
                }
            }
            start = pairEnd == end ? end : utf8.index(after: pairEnd)
        }
        end = utf8.endIndex
        return result
    }

    /// Decodes `%XX` escapes (and `+` when asked). Malformed escapes are kept as they are; bytes that do not form
    /// UTF-8 become U+FFFD, which no topic or id accepts, so they are refused downstream.
    static func percentDecode(_ text: String, plusIsSpace: Bool) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) })
        else { return text }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "+") && plusIsSpace {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), iterator.count >= 2,
                let high = iterator[iterator.startIndex].hexDigitValue,
                let low = iterator[iterator.startIndex + 1].hexDigitValue
            {
                bytes.append(high << 4 | low)
                iterator = iterator.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
