/// The size line of an HTTP/1.1 chunk, read as it arrives: hex digits, then an optional `;extension` that is
/// skipped up to the line's `\r`. Shared by the bench's two readers of chunked bodies, ``EventStreamScanner`` and
/// ``HTTPResponseScanner``.
struct ChunkSizeLine {
    enum Error: Swift.Error {
        /// A byte that is neither a hex digit nor the `;` of an extension, or a size past `Int.max`.
        case invalid
    }

    private var value = 0
    private var sawDigit = false
    private var inExtension = false

    /// The size, once the line ended with at least one digit.
    var size: Int? { self.sawDigit ? self.value : nil }

    /// Reads from `start` up to the line's `\r` (taken) or the end of `bytes`; returns the index after the bytes it
    /// took, and whether the line ended.
    mutating func read(
        _ bytes: UnsafeRawBufferPointer, from start: Int
    ) throws(ChunkSizeLine.Error) -> (index: Int, ended: Bool) {
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: "\r") {
                return (index, true)
            } else if self.inExtension {
                continue
            } else if byte == UInt8(ascii: ";") {
                self.inExtension = true
            } else if let digit = Self.hexValue(byte), self.value <= Int.max >> 4 {
                self.value = self.value << 4 | digit
                self.sawDigit = true
            } else {
                throw .invalid
            }
        }
        return (index, false)
    }

    /// The value of a hex digit, or nil.
    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}
