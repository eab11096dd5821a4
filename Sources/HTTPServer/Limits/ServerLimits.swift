/// The limits the whole server shares: its connection slots and the publishers' token buckets.
struct ServerLimits: Sendable {
    let connections: ConnectionLimiter
    let publishRate: PublishRateLimiter

    init(_ configuration: BrokerConfiguration) {
        self.connections = ConnectionLimiter(
            maxConnections: configuration.maxConnections,
            maxConnectionsPerAddress: configuration.maxConnectionsPerAddress)
        self.publishRate = PublishRateLimiter(rate: configuration.publishRate, burst: configuration.publishBurst)
    }

    /// The answer to a connection over a limit, and to a publish over the rate.
    static func refusal(_ refusal: ConnectionLimiter.Refusal) -> APIError {
        var error: APIError
        switch refusal {
        case .serverFull:
            error = APIError(
                .serviceUnavailable, "server_full", "The broker serves as many connections as it may; retry shortly.")
        case .tooManyFromAddress:
            error = APIError(
                .tooManyRequests, "too_many_connections",
                "This address holds as many connections as it may; close one or retry shortly.")
        }
        error.headers = [("Retry-After", "5")]
        error.closesConnection = true
        return error
    }

    static func rateLimited(retryAfter seconds: Int) -> APIError {
        var error = APIError(
            .tooManyRequests, "rate_limited", "Too many publishes from this client; retry in \(seconds) s.")
        error.headers = [("Retry-After", String(seconds))]
        return error
    }
}
