import NIOCore

/// The RFC 7692 `permessage-deflate` WebSocket extension: what the server agrees to during the handshake
/// (`negotiate(offers:)`, in `PerMessageDeflate+Negotiation.swift`) and the constants shared by the codec.
///
/// The codec itself is two loop-confined classes:
/// - `PerMessageDeflateCompressor`, one per event loop, compresses each outgoing message on its own
///   (`server_no_context_takeover` is always agreed), so one compressed frame can go to every connection on the loop;
/// - `PerMessageDeflateDecompressor`, one per connection, inflates the client's messages and keeps the client's
///   LZ77 window between them unless `client_no_context_takeover` was agreed.
///
/// On the wire a compressed message is a frame with RSV1 set whose payload is raw DEFLATE data, sync-flushed, with
/// the flush's final `00 00 ff ff` removed (RFC 7692 §7.2.1):
/// ```
/// +-+-+-+-+-------+-+-------------+-------------------------------+
/// |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
/// |I|S|S|S|  0x1  |A|   (7 bits)  |         (16 or 64 bits)       |
/// |N|V|V|V|       |S|             |                               |
/// |1|1|0|0|       |0|             |                               |
/// +-+-+-+-+-------+-+-------------+-------------------------------+
/// | DEFLATE blocks ... (BFINAL=0)  [00 00 ff ff removed]          |
/// +---------------------------------------------------------------+
/// ```
enum PerMessageDeflate {
    /// The extension token in `Sec-WebSocket-Extensions`.
    static let extensionName = "permessage-deflate"

    /// The empty stored block a sync flush ends with: removed by the sender, appended again by the receiver.
    static let syncFlushTail = ByteBuffer(bytes: [0x00, 0x00, 0xFF, 0xFF])

    /// The agreed window sizes, as base-2 logarithms (RFC 7692 §7.1.2).
    static let windowBitsRange = 8...15

    /// What the server and the client agreed for one connection.
    ///
    /// The server always agrees `server_no_context_takeover`, so it has no field: every server message is compressed
    /// on its own. Window sizes are the effective limits (15 when the response does not name them).
    struct Parameters: Hashable, Sendable {
        /// The client resets its compressor after each message; the server's inflater need not keep a window.
        var clientNoContextTakeover: Bool
        /// The largest LZ77 window (log2, 8…15) the server may use when compressing.
        var serverMaxWindowBits: Int
        /// The largest LZ77 window (log2, 8…15) the client may use when compressing.
        var clientMaxWindowBits: Int

        /// - Parameters:
        ///   - clientNoContextTakeover: `client_no_context_takeover` was agreed.
        ///   - serverMaxWindowBits: the agreed `server_max_window_bits`, or 15.
        ///   - clientMaxWindowBits: the agreed `client_max_window_bits`, or 15.
        init(clientNoContextTakeover: Bool = false, serverMaxWindowBits: Int = 15, clientMaxWindowBits: Int = 15) {
            precondition(PerMessageDeflate.windowBitsRange.contains(serverMaxWindowBits), "server window out of range")
            precondition(PerMessageDeflate.windowBitsRange.contains(clientMaxWindowBits), "client window out of range")
            self.clientNoContextTakeover = clientNoContextTakeover
            self.serverMaxWindowBits = serverMaxWindowBits
            self.clientMaxWindowBits = clientMaxWindowBits
        }
    }
}
