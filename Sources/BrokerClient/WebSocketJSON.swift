/// A JSON value of the broker's WebSocket protocol, parsed keeping object keys in order and numbers as written, so
/// re-serializing a value only drops insignificant whitespace.
///
/// That is what makes an event's `data` come out as the same text over both transports: the broker writes a JSON
/// `data` value into an SSE `data:` line as its compact text, and ``serialized()`` rebuilds that text from the
/// WebSocket message, escaping exactly as the broker does (`"`, `\`, control characters, U+2028 and U+2029; other
/// characters, `/` included, are written as they are).
///
/// ```
/// {"type":"event","id":"7","data":{ "b": 1.50, "a": ["x"] }}
///                                  └ serialized(): {"b":1.50,"a":["x"]}
/// ```
/// Parsing is strict RFC 8259 (UTF-8, no trailing commas, surrogates paired), with nesting bounded by ``maximumDepth``.
/// BrokerClient has its own parser because Foundation's `JSONSerialization` loses key order and number spelling.
enum WebSocketJSON: Sendable {
    case null
    case bool(Bool)
    /// The number's text, validated against the JSON grammar.
    case number(String)
    case string(String)
    case array([WebSocketJSON])
    case object([(key: String, value: WebSocketJSON)])

    /// Why a text is not JSON: what was wrong and at which byte.
    struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        var offset: Int
        var reason: String
        var description: String { "\(self.reason) at byte \(self.offset)" }
    }

    /// Deeper nesting is refused so a hostile message cannot exhaust the stack; the broker's own limit on published
    /// values is lower.
    static let maximumDepth = 128

    /// The value of `key` in an object (the first, if repeated); `nil` for other values.
    subscript(key: String) -> WebSocketJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first(where: { $0.key == key })?.value
    }

    /// The text of a string value; `nil` for other values.
    var stringValue: String? {
        guard case .string(let text) = self else { return nil }
        return text
    }

    /// Parses one JSON text: any value, with optional whitespace around it.
    static func parse<Bytes: Sequence>(_ input: Bytes) throws(ParseError) -> WebSocketJSON
    where Bytes.Element == UInt8 {
        var reader = Reader(bytes: Array(input))
        reader.skipWhitespace()
        let value = try reader.readValue(depth: 0)
        reader.skipWhitespace()
        guard reader.index == reader.bytes.count else { throw reader.error("unexpected data after the JSON value") }
        return value
    }

    /// Compact JSON text.
    func serialized() -> String {
        var output = ""
        self.write(to: &output)
        return output
    }

    private func write(to output: inout String) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .number(let text): output += text
        case .string(let text): Self.writeString(text, to: &output)
        case .array(let elements):
            output += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { output += "," }
                element.write(to: &output)
            }
            output += "]"
        case .object(let members):
            output += "{"
            for (index, member) in members.enumerated() {
                if index > 0 { output += "," }
                Self.writeString(member.key, to: &output)
                output += ":"
                member.value.write(to: &output)
            }
            output += "}"
        }
    }

    /// Writes `text` as a JSON string literal, escaping what JSON requires plus U+2028 and U+2029, as the broker does.
    static func writeString(_ text: String, to output: inout String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case "\u{2028}": output += "\\u2028"
            case "\u{2029}": output += "\\u2029"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        output += "\""
    }
}

extension WebSocketJSON {
    /// A cursor over the bytes of one JSON text.
    private struct Reader {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        func error(_ reason: String) -> ParseError {
            ParseError(offset: self.index, reason: reason)
        }

        private var current: UInt8? {
            self.index < self.bytes.count ? self.bytes[self.index] : nil
        }

        mutating func skipWhitespace() {
            while let byte = self.current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                self.index += 1
            }
        }

        mutating func readValue(depth: Int) throws(ParseError) -> WebSocketJSON {
            guard let byte = self.current else { throw self.error("unexpected end of input") }
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard depth < WebSocketJSON.maximumDepth else {
                    throw self.error("nesting deeper than \(WebSocketJSON.maximumDepth) levels")
                }
                return byte == UInt8(ascii: "{") ? try self.readObject(depth: depth) : try self.readArray(depth: depth)
            case UInt8(ascii: "\""):
                return .string(try self.readString())
            case UInt8(ascii: "t"):
                try self.expectLiteral("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try self.expectLiteral("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try self.expectLiteral("null")
                return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return .number(try self.readNumber())
            default:
                throw self.error("unexpected character")
            }
        }

        private mutating func expectLiteral(_ literal: String) throws(ParseError) {
            for expected in literal.utf8 {
                guard self.current == expected else { throw self.error("invalid literal") }
                self.index += 1
            }
        }

        private mutating func readObject(depth: Int) throws(ParseError) -> WebSocketJSON {
            self.index += 1
            var members: [(key: String, value: WebSocketJSON)] = []
            self.skipWhitespace()
            if self.current == UInt8(ascii: "}") {
                self.index += 1
                return .object(members)
            }
            while true {
                self.skipWhitespace()
                guard self.current == UInt8(ascii: "\"") else { throw self.error("expected a string key") }
                let key = try self.readString()
                self.skipWhitespace()
                guard self.current == UInt8(ascii: ":") else { throw self.error("expected ':'") }
                self.index += 1
                self.skipWhitespace()
                members.append((key, try self.readValue(depth: depth + 1)))
                self.skipWhitespace()
                switch self.current {
                case UInt8(ascii: ","):
                    self.index += 1
                case UInt8(ascii: "}"):
                    self.index += 1
                    return .object(members)
                case nil:
                    throw self.error("unexpected end of input")
                default:
                    throw self.error("expected ',' or '}'")
                }
            }
        }

        private mutating func readArray(depth: Int) throws(ParseError) -> WebSocketJSON {
            self.index += 1
            var elements: [WebSocketJSON] = []
            self.skipWhitespace()
            if self.current == UInt8(ascii: "]") {
                self.index += 1
                return .array(elements)
            }
            while true {
                self.skipWhitespace()
                elements.append(try self.readValue(depth: depth + 1))
                self.skipWhitespace()
                switch self.current {
                case UInt8(ascii: ","):
                    self.index += 1
                case UInt8(ascii: "]"):
                    self.index += 1
                    return .array(elements)
                case nil:
                    throw self.error("unexpected end of input")
                default:
                    throw self.error("expected ',' or ']'")
                }
            }
        }

        private mutating func readNumber() throws(ParseError) -> String {
            let start = self.index
            if self.current == UInt8(ascii: "-") {
                self.index += 1
            }
            if self.current == UInt8(ascii: "0") {
                self.index += 1
            } else {
                guard self.skipDigits() > 0 else { throw self.error("invalid number") }
            }
            if self.current == UInt8(ascii: ".") {
                self.index += 1
                guard self.skipDigits() > 0 else { throw self.error("invalid number") }
            }
            if let byte = self.current, byte | 0x20 == UInt8(ascii: "e") {
                self.index += 1
                if self.current == UInt8(ascii: "+") || self.current == UInt8(ascii: "-") {
                    self.index += 1
                }
                guard self.skipDigits() > 0 else { throw self.error("invalid number") }
            }
            return String(decoding: self.bytes[start..<self.index], as: UTF8.self)
        }

        private mutating func skipDigits() -> Int {
            let start = self.index
            while let byte = self.current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                self.index += 1
            }
            return self.index - start
        }

        private mutating func readString() throws(ParseError) -> String {
            self.index += 1
            var scalars = String.UnicodeScalarView()
            var runStart = self.index
            while true {
                guard let byte = self.current else { throw self.error("unterminated string") }
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                    if runStart < self.index {
                        guard let run = String(validating: self.bytes[runStart..<self.index], as: UTF8.self) else {
                            throw ParseError(offset: runStart, reason: "invalid UTF-8 in string")
                        }
                        scalars.append(contentsOf: run.unicodeScalars)
                    }
                    self.index += 1
                    if byte == UInt8(ascii: "\"") {
                        return String(scalars)
                    }
                    scalars.append(try self.readEscape())
                    runStart = self.index
                case 0..<0x20:
                    throw self.error("control character in string")
                default:
                    self.index += 1
                }
            }
        }

        private mutating func readEscape() throws(ParseError) -> Unicode.Scalar {
            guard let byte = self.current else { throw self.error("unterminated escape") }
            self.index += 1
            switch byte {
            case UInt8(ascii: "\""): return "\""
            case UInt8(ascii: "\\"): return "\\"
            case UInt8(ascii: "/"): return "/"
            case UInt8(ascii: "b"): return "\u{08}"
            case UInt8(ascii: "f"): return "\u{0C}"
            case UInt8(ascii: "n"): return "\n"
            case UInt8(ascii: "r"): return "\r"
            case UInt8(ascii: "t"): return "\t"
            case UInt8(ascii: "u"):
                let high = try self.readHex4()
                guard (0xD800...0xDBFF).contains(high) else {
                    guard let scalar = Unicode.Scalar(high) else { throw self.error("unpaired surrogate") }
                    return scalar
                }
                guard self.current == UInt8(ascii: "\\"), self.index + 1 < self.bytes.count,
                    self.bytes[self.index + 1] == UInt8(ascii: "u")
                else { throw self.error("unpaired surrogate") }
                self.index += 2
                let low = try self.readHex4()
                guard (0xDC00...0xDFFF).contains(low),
                    let scalar = Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                else { throw self.error("unpaired surrogate") }
                return scalar
            default:
                throw self.error("invalid escape")
            }
        }

        private mutating func readHex4() throws(ParseError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let byte = self.current else { throw self.error("unterminated escape") }
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw self.error("invalid \\u escape")
                }
                value = value << 4 | UInt32(digit)
                self.index += 1
            }
            return value
        }
    }
}
