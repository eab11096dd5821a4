import EventBroker
import Foundation

/// Wall-clock time the test moves by hand. `microseconds` is only touched under `lock`.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var microseconds: UInt64

    init(microseconds: UInt64) {
        self.microseconds = microseconds
    }

    var nowMicroseconds: UInt64 { self.lock.withLock { self.microseconds } }

    func advance(byMilliseconds milliseconds: UInt64) {
        self.lock.withLock { self.microseconds += milliseconds * 1000 }
    }

    var brokerClock: BrokerClock { BrokerClock { self.nowMicroseconds } }
}
