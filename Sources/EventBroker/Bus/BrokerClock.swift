#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Wall-clock time for event timestamps, id epochs and age-based retention; injected so tests control it.
public struct BrokerClock: Sendable {
    private let read: @Sendable () -> UInt64

    /// - Parameter nowMicroseconds: microseconds since 1970.
    public init(nowMicroseconds: @escaping @Sendable () -> UInt64) {
        self.read = nowMicroseconds
    }

    public var nowMicroseconds: UInt64 { self.read() }
    public var nowMilliseconds: UInt64 { self.read() / 1000 }

    /// The system's real-time clock.
    public static let system = BrokerClock {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(spec.tv_sec) * 1_000_000 + UInt64(spec.tv_nsec) / 1000
    }
}
