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
        Self.withDigits(of: value, radix: 10) { self.setBytes($0, at: index) }
    }

    /// Writes `value` in lowercase hex as exactly `digits` digits at `index`, within the written bytes.
    package mutating func setHex(_ value: UInt64, digits: Int, at index: Int) {
        Self.withDigits(of: value, radix: 16, count: digits) { _ = self.setBytes($0, at: index) }
    }

    /// Appends `value` in decimal.
    package mutating func writeDecimal(_ value: UInt64) {
        Self.withDigits(of: value, radix: 10) { _ = self.writeBytes($0) }
    }

    /// The digits of `value` (lowercase), at least `count` of them (zero-padded), composed on the stack so the buffer
    /// (or any other destination) takes them in one copy: one uniqueness and bounds check, not one per digit.
    package static func withDigits<Result>(
        of value: UInt64, radix: UInt64, count: Int = 1, _ body: (UnsafeRawBufferPointer) -> Result
    ) -> Result {
        var scratch: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes: 20 decimal or 16 hex digits fit
        return withUnsafeMutableBytes(of: &scratch) { bytes in
            var start = bytes.count
            var rest = value
            repeat {
                start -= 1
                let digit = UInt8(truncatingIfNeeded: rest % radix)
                bytes[start] = digit < 10 ? UInt8(ascii: "0") &+ digit : UInt8(ascii: "a") &+ digit &- 10
                rest /= radix
            } while rest > 0 || bytes.count - start < count
            return body(UnsafeRawBufferPointer(rebasing: bytes[start...]))
        }
    }
}
