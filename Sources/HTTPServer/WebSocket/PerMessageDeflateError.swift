/// Why a `permessage-deflate` message could not be inflated, or a codec not set up.
///
/// A WebSocket handler fails the connection on any of them (RFC 7692 §8): the client's LZ77 window, if it is kept
/// between messages, is lost with the failed message.
enum PerMessageDeflateError: Error, Hashable, Sendable {
    /// The inflated message would exceed the `maxBytes` it was inflated with: close with 1009 (Message Too Big).
    case messageTooLarge
    /// The payload is not valid DEFLATE data: close with 1007.
    case corruptData
    /// zlib could not allocate or run its stream: close with 1011.
    case zlibFailure
}
