import HTTPServer
import NIOCore
import NIOSSL

/// Serves HTTPS (and `wss://`): puts a `NIOSSLServerHandler` first in every connection's pipeline, over one
/// `NIOSSLContext` that all connections share. Made by ``TLSFiles/makeConnectionSecurity()``.
///
/// TLS has its costs on a broker: every delivery is encrypted per connection (the zero-allocation fan-out is plain
/// HTTP's), and NIOSSL keeps a 32 KiB read buffer and a write buffer of at least 16 KiB per connection. The
/// slow-consumer cap still applies: NIOSSL encrypts on flush and writes to the socket at once, so `isWritable` and the
/// water mark count the ciphertext (each event some 20 to 30 bytes larger).
public struct TLSConnectionSecurity: ConnectionSecurity {
    let context: NIOSSLContext

    public var scheme: String { "https" }

    public func secure(_ pipeline: ChannelPipeline.SynchronousOperations) throws {
        try pipeline.addHandler(NIOSSLServerHandler(context: self.context))
    }
}
