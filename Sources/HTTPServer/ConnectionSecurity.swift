import NIOCore

/// What secures a connection before HTTP reads it: TLS, from the `BrokerTLS` module
/// (`TLSFiles(…).makeConnectionSecurity()`), so that this module and what links only it need no TLS library.
///
/// The server calls ``secure(_:)`` first for every accepted connection, on its event loop. The handlers it adds serve
/// the connection for its whole life: they stay in front of HTTP, and of the SSE or WebSocket handlers that replace
/// HTTP on a stream.
public protocol ConnectionSecurity: Sendable {
    /// The scheme of the listener's URLs: `https`.
    var scheme: String { get }

    /// Adds the securing handlers to a new connection's still empty pipeline.
    func secure(_ pipeline: ChannelPipeline.SynchronousOperations) throws
}
