import CompressNIO
import NIOCore

/// Compresses outgoing WebSocket messages for `permessage-deflate`, each message on its own
/// (`server_no_context_takeover`), with compress-nio's raw-DEFLATE `ZlibCompressor`.
///
/// Because no message depends on an earlier one, a compressed message is the same bytes for every connection whose
/// agreed `server_max_window_bits` is at least this compressor's: compress an event once per loop and write the one
/// frame to all of them. Connections that agreed a smaller window need a compressor of that size (keep one per
/// distinct value on the loop; browsers never ask, so there is normally one).
///
/// `compress` resets the zlib stream, deflates the whole payload, sync-flushes, and removes the flush's
/// `00 00 ff ff` (RFC 7692 §7.2.1). An empty payload becomes the single byte `00` (RFC 7692 §7.2.3.6).
///
/// zlib refuses a raw-DEFLATE window of 8 bits, so for `server_max_window_bits=8` this compressor uses 9. That still
/// honours the agreed 256-byte window: zlib never looks back further than the window minus 262 bytes
/// (`MAX_DIST`), which with 512 bytes is 250.
///
/// Loop-confined: the zlib stream is mutable state, so use an instance from one event loop (or one thread) only.
final class PerMessageDeflateCompressor {
    /// The `server_max_window_bits` this compressor honours (8…15).
    let windowBits: Int
    private let deflater: ZlibCompressor
    private let allocator: ByteBufferAllocator

    /// - Parameters:
    ///   - windowBits: the agreed `server_max_window_bits` (8…15); 15 when none was agreed.
    ///   - allocator: allocates the compressed buffers.
    /// - Throws: `PerMessageDeflateError.zlibFailure` when zlib cannot allocate its stream.
    init(windowBits: Int = 15, allocator: ByteBufferAllocator = ByteBufferAllocator()) throws(PerMessageDeflateError) {
        precondition(PerMessageDeflate.windowBitsRange.contains(windowBits), "window bits must be 8...15")
        self.windowBits = windowBits
        self.allocator = allocator
        do {
            self.deflater = try ZlibCompressor(
                algorithm: .deflate,
                configuration: ZlibConfiguration(windowSize: Int32(max(9, windowBits)))
            )
        } catch {
            throw .zlibFailure
        }
    }

    /// Compresses one whole message: the payload of a frame with RSV1 set.
    ///
    /// Allocates one buffer, sized by zlib's bound for the input, and never mutates `payload`'s bytes (it is copied
    /// if its storage is shared, since zlib reads through a mutable pointer).
    /// - Parameter payload: the uncompressed message.
    /// - Returns: raw DEFLATE data without the trailing `00 00 ff ff`.
    func compress(_ payload: ByteBuffer) -> ByteBuffer {
        var input = payload
        var output = self.allocator.buffer(capacity: self.deflater.maxSize(from: input))
        do {
            try self.deflater.reset()
            while true {
                do {
                    try self.deflater.deflate(from: &input, to: &output, flush: .sync)
                } catch let error as CompressNIOError where error == .bufferOverflow {
                    // zlib could not finish (output full) or had nothing left to do: decided below.
                }
                // zlib's rule: a flush is complete once it returns with output space left.
                if input.readableBytes == 0, output.writableBytes > 0 {
                    break
                }
                output.reserveCapacity(minimumWritableBytes: max(64, output.capacity))
            }
        } catch {
            // Only a broken stream (a bug) makes deflate or deflateReset fail: memory is allocated at init.
            preconditionFailure("zlib deflate failed: \(error)")
        }
        precondition(
            output.getInteger(at: output.writerIndex - 4, as: UInt32.self) == 0x0000_FFFF,
            "a sync flush ends with 00 00 ff ff"
        )
        output.moveWriterIndex(to: output.writerIndex - 4)
        return output
    }

    /// Builds a complete server text frame around a compressed message: FIN, RSV1, opcode 0x1, the payload length
    /// in 7, 7+16 or 7+64 bits (RFC 6455 §5.2), no mask, then the payload. The server writes it as raw bytes.
    ///
    /// - Parameters:
    ///   - compressedPayload: what `compress(_:)` returned.
    ///   - allocator: allocates the frame.
    /// - Returns: the frame, header and payload in one buffer.
    static func textFrame(
        compressedPayload: ByteBuffer,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ByteBuffer {
        let length = compressedPayload.readableBytes
        var frame = allocator.buffer(capacity: 10 + length)
        frame.writeInteger(UInt8(0xC1))  // FIN | RSV1 | text
        if length < 126 {
            frame.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            frame.writeInteger(UInt8(126))
            frame.writeInteger(UInt16(length))
        } else {
            frame.writeInteger(UInt8(127))
            frame.writeInteger(UInt64(length))
        }
        frame.writeImmutableBuffer(compressedPayload)
        return frame
    }
}

@available(*, unavailable)
extension PerMessageDeflateCompressor: Sendable {}
