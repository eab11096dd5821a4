/// A validated topic name: 1 to 256 bytes of `A-Z a-z 0-9 . _ - : / @ $`, in non-empty `/`-separated segments.
///
/// Topics that begin with `$` are reserved for the broker (`$broadcast`, `$presence/<topic>`): clients may
/// subscribe to them but never publish to them.
public struct TopicName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public static let maxLength = 256
    /// Every subscriber receives events on this topic; it is stored like any other so streams can resume it.
    public static let broadcast = TopicName(unchecked: "$broadcast")

    public let value: String

    public init(_ value: String) throws(BrokerError) {
        guard Self.isValid(value) else {
            throw BrokerError(
                .invalidTopic,
                "Invalid topic '\(value.prefix(80))': use 1 to 256 characters of A-Z a-z 0-9 . _ - : / @ $ in non-empty '/'-separated segments."
            )
        }
        self.value = value
    }

    init(unchecked value: String) {
        self.value = value
    }

    /// Whether the broker owns this topic (it begins with `$`).
    public var isReserved: Bool { self.value.utf8.first == UInt8(ascii: "$") }

    public var description: String { self.value }

    public static func < (lhs: TopicName, rhs: TopicName) -> Bool { lhs.value < rhs.value }

    static func isValid(_ value: String) -> Bool {
        let bytes = value.utf8
        guard !bytes.isEmpty, bytes.count <= Self.maxLength else { return false }
        var previousWasSlash = true
        for byte in bytes {
            if byte == UInt8(ascii: "/") {
                if previousWasSlash { return false }
                previousWasSlash = true
                continue
            }
            guard Self.isNameByte(byte) else { return false }
            previousWasSlash = false
        }
        return !previousWasSlash
    }

    @inline(__always)
    static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "@"),
            UInt8(ascii: "$"):
            return true
        default:
            return false
        }
    }
}
