/// An event id: a 64-bit number written in decimal, strictly increasing in publish order.
///
/// A broker starts its sequence at its boot time in microseconds (or just past the last id its store holds,
/// whichever is larger), so ids keep increasing across a restart even with the in-memory store, as long as the
/// previous run published fewer than a million events per second of its uptime. Sixteen digits until the year
/// 2286, so ids of one era also sort as strings. `0` means "before every event".
public struct EventID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let zero = EventID(rawValue: 0)

    public var rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    /// Parses the decimal form; nil for anything else (which a resuming client is told is unknown).
    public init?<S: StringProtocol>(parsing text: S) {
        let utf8 = text.utf8
        guard !utf8.isEmpty, utf8.count <= 20 else { return nil }
        var value: UInt64 = 0
        for byte in utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (multiplied, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (added, overflow2) = multiplied.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = added
        }
        self.rawValue = value
    }

    public var description: String { String(self.rawValue) }

    public static func < (lhs: EventID, rhs: EventID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Hands out strictly increasing ids. Not thread-safe: the broker calls it under its lock.
public struct EventIDGenerator: Sendable {
    /// The first id this generator issues; everything before it predates this broker's run.
    public let floor: EventID
    private var next: UInt64

    /// - Parameters:
    ///   - bootTimeMicroseconds: wall-clock time of start-up, in microseconds since 1970.
    ///   - lastStoredID: the highest id a durable store already holds, if any.
    public init(bootTimeMicroseconds: UInt64, lastStoredID: EventID? = nil) {
        let start = max(bootTimeMicroseconds, (lastStoredID?.rawValue ?? 0) &+ 1, 1)
        self.floor = EventID(rawValue: start)
        self.next = start
    }

    /// The id the next call to `make()` returns.
    public var peek: EventID { EventID(rawValue: self.next) }

    /// The most recently issued id, or nil when none was issued yet.
    public var lastIssued: EventID? { self.next > self.floor.rawValue ? EventID(rawValue: self.next - 1) : nil }

    public mutating func make() -> EventID {
        defer { self.next += 1 }
        return EventID(rawValue: self.next)
    }
}
