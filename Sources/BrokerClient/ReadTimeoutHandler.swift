import NIOCore

/// Turns the read-idle event of the `IdleStateHandler` before it into an ``BrokerClientError/Code/idleTimeout``
/// error and closes the channel, so a half-open connection does not wait forever.
final class ReadTimeoutHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let url: BrokerURL
    private let idleTimeout: Duration

    init(url: BrokerURL, idleTimeout: Duration) {
        self.url = url
        self.idleTimeout = idleTimeout
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let idleEvent = event as? IdleStateHandler.IdleStateEvent, idleEvent == .read else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        context.fireErrorCaught(
            BrokerClientError(.idleTimeout, "\(self.url) sent nothing for \(self.idleTimeout)")
        )
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension ReadTimeoutHandler: Sendable {}
