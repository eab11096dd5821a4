import NIOCore
import Testing

@testable import EventBroker

/// Numbers written as ASCII digits into buffers: ids, lengths, chunk sizes.
@Suite struct ByteBufferDigitsTests {
    static let values: [UInt64] = [0, 1, 9, 10, 15, 16, 99, 100, 255, 4096, 1_763_780_248_000_001, .max - 1, .max]

    @Test(arguments: Self.values)
    func writesDecimalDigits(_ value: UInt64) {
        var buffer = ByteBuffer(string: "x")
        buffer.writeDecimal(value)
        #expect(String(buffer: buffer) == "x\(value)")
        #expect(ByteBuffer.decimalDigits(value) == String(value).count)
    }

    @Test(arguments: Self.values)
    func setsDecimalDigitsInPlace(_ value: UInt64) {
        let digits = String(value)
        var buffer = ByteBuffer(repeating: UInt8(ascii: "-"), count: digits.count + 2)
        #expect(buffer.setDecimal(value, at: 1) == digits.count)
        #expect(String(buffer: buffer) == "-\(digits)-")
    }

    @Test(arguments: Self.values)
    func setsHexDigitsInPlace(_ value: UInt64) {
        let digits = String(value, radix: 16)
        #expect(ByteBuffer.hexDigits(value) == digits.count)
        var buffer = ByteBuffer(repeating: UInt8(ascii: "-"), count: digits.count + 2)
        buffer.setHex(value, digits: digits.count, at: 1)
        #expect(String(buffer: buffer) == "-\(digits)-")
    }

    @Test func padsHexDigitsWithZerosToTheCountAsked() {
        var buffer = ByteBuffer(repeating: UInt8(ascii: "-"), count: 6)
        buffer.setHex(0x1F, digits: 4, at: 1)
        #expect(String(buffer: buffer) == "-001f-")
    }
}
