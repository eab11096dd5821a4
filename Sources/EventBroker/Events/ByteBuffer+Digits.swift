import NIOCore

/// Numbers written as ASCII digits straight into a buffer, with no `String` in between: frames are encoded on the
/// publish path, where every temporary string costs an allocation. Package-wide: the bench writes its requests so.
extension ByteBuffer {
    /// How many decimal digits `value` has (1 for 0).
    package static func decimalDigits(_ value: UInt64) -> Int {
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        return digits
    }

    /// How many hex digits `value` has (1 for 0).
    package static func hexDigits(_ value: UInt64) -> Int {
        value == 0 ? 1 : (64 - value.leadingZeroBitCount + 3) / 4
    }

    /// Writes `value` in decimal at `index`, which must lie within the written bytes; returns the digits written.
    @discardableResult
    package mutating func setDecimal(_ value: UInt64, at index: Int) -> Int {
        let digits = Self.decimalDigits(value)
        var rest = value
        for position in stride(from: index + digits - 1, through: index, by: -1) {
            self.setInteger(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10), at: position)
            rest /= 10
        }
        return digits
    }

    /// Writes `value` in lowercase hex as exactly `digits` digits at `index`, within the written bytes.
    package mutating func setHex(_ value: UInt64, digits: Int, at index: Int) {
        var rest = value
        for position in stride(from: index + digits - 1, through: index, by: -1) {
            let nibble = UInt8(truncatingIfNeeded: rest & 0xF)
            self.setInteger(nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "a") &+ nibble &- 10, at: position)
            rest >>= 4
        }
    }

    /// Appends `value` in decimal.
    package mutating func writeDecimal(_ value: UInt64) {
        let digits = Self.decimalDigits(value)
        self.writeRepeatingByte(UInt8(ascii: "0"), count: digits)
        self.setDecimal(value, at: self.writerIndex - digits)
    }
}
