#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Received bytes compared with ASCII literals by `memcmp`, shared by the request parser and the publish decoder: a
/// generic comparison with a string's UTF-8 view goes byte by byte through the view's index.
extension UnsafeRawBufferPointer {
    func equals(_ literal: StaticString) -> Bool {
        self.count == literal.utf8CodeUnitCount && self.hasPrefix(literal)
    }

    func hasPrefix(_ literal: StaticString) -> Bool {
        self.matches(literal, at: 0)
    }

    func hasSuffix(_ literal: StaticString) -> Bool {
        self.matches(literal, at: self.count - literal.utf8CodeUnitCount)
    }

    private func matches(_ literal: StaticString, at offset: Int) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard offset >= 0, offset + count <= self.count else { return false }
        guard count > 0 else { return true }
        return memcmp(self.baseAddress! + offset, literal.utf8Start, count) == 0
    }
}
