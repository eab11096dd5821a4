import NIOCore

/// Remembers the result of each publish that carried an `Idempotency-Key`, for a window of time and up to a
/// number of keys, so a retried publish gets the first one's answer instead of a second delivery.
struct IdempotencyCache {
    private struct Entry {
        let key: String
        let expiresAtMilliseconds: UInt64
    }

    private var results: [String: PublishResult] = [:]
    private var order = CircularBuffer<Entry>(initialCapacity: 16)
    let windowMilliseconds: UInt64
    let capacity: Int

    init(window: Duration, capacity: Int) {
        self.windowMilliseconds = window.wholeMilliseconds
        self.capacity = max(1, capacity)
    }

    var count: Int { self.results.count }

    func result(for key: String) -> PublishResult? { self.results[key] }

    mutating func insert(_ result: PublishResult, for key: String, nowMilliseconds: UInt64) {
        guard self.results.updateValue(result, forKey: key) == nil else { return }
        self.order.append(Entry(key: key, expiresAtMilliseconds: nowMilliseconds + self.windowMilliseconds))
        while self.order.count > self.capacity, let oldest = self.order.popFirst() {
            self.results[oldest.key] = nil
        }
    }

    /// Puts back a key a store kept, with its original expiry. Keys must come in expiry order.
    mutating func restore(_ result: PublishResult, for key: String, expiresAtMilliseconds: UInt64) {
        guard self.results.updateValue(result, forKey: key) == nil else { return }
        self.order.append(Entry(key: key, expiresAtMilliseconds: expiresAtMilliseconds))
        while self.order.count > self.capacity, let oldest = self.order.popFirst() {
            self.results[oldest.key] = nil
        }
    }

    mutating func expire(nowMilliseconds: UInt64) {
        while let oldest = self.order.first, oldest.expiresAtMilliseconds <= nowMilliseconds {
            self.order.removeFirst()
            self.results[oldest.key] = nil
        }
    }
}
