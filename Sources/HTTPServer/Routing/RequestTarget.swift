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

    /// Parses `application/x-www-form-urlencoded` text (also the query string's format).
    static func parseForm(_ text: Substring) -> [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        var query = text
        if let fragment = query.firstIndex(of: "#") { query = query[..<fragment] }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let nameValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.percentDecode(String(nameValue[0]), plusIsSpace: true)
            let value = nameValue.count > 1 ? Self.percentDecode(String(nameValue[1]), plusIsSpace: true) : ""
            result.append((name, value))
        }
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
                let high = Self.hexValue(iterator[iterator.startIndex]),
                let low = Self.hexValue(iterator[iterator.startIndex + 1])
            {
                bytes.append(high << 4 | low)
                iterator = iterator.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
