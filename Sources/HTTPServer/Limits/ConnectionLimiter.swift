import NIOConcurrencyHelpers

/// Counts open connections, in all and per client IP, and says whether a new one may be served.
///
/// A connection over a limit is still accepted at the TCP level, so its first request can be answered the way a
/// client understands: a retryable refusal (`503` or `429` with `Retry-After`, or on the SSE endpoint a `200` with a
/// `retry:` hint), then the connection closes. It holds no slot meanwhile, and the request timeout bounds how long
/// it can stay.
final class ConnectionLimiter: Sendable {
    enum Refusal: Equatable, Sendable {
        /// The broker holds `maxConnections` already.
        case serverFull
        /// This client IP holds `maxConnectionsPerIP` already.
        case tooManyFromAddress
    }

    private struct State {
        var total = 0
        var perAddress: [String: Int] = [:]
    }

    /// 0 means no limit.
    let maxConnections: Int
    /// 0 means no limit.
    let maxConnectionsPerAddress: Int
    private let state = NIOLockedValueBox(State())

    init(maxConnections: Int, maxConnectionsPerAddress: Int) {
        self.maxConnections = maxConnections
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
    }

    /// Takes a slot for a connection from `address` (nil when unknown, e.g. a Unix socket), or says why not. A
    /// connection that got a slot must give it back with ``release(address:)`` when it closes.
    func admit(address: String?) -> Refusal? {
        self.state.withLockedValue { state in
            if self.maxConnections > 0, state.total >= self.maxConnections { return .serverFull }
            if let address, self.maxConnectionsPerAddress > 0,
                state.perAddress[address, default: 0] >= self.maxConnectionsPerAddress
            {
                return .tooManyFromAddress
            }
            state.total += 1
            if let address { state.perAddress[address, default: 0] += 1 }
            return nil
        }
    }

    func release(address: String?) {
        self.state.withLockedValue { state in
            state.total -= 1
            guard let address, let count = state.perAddress[address] else { return }
            state.perAddress[address] = count > 1 ? count - 1 : nil
        }
    }

    /// Connections holding a slot now.
    var count: Int { self.state.withLockedValue { $0.total } }
}
