import CompressNIO
import NIOCore

/// Inflates one connection's compressed WebSocket messages for `permessage-deflate`, with compress-nio's raw-DEFLATE
/// `ZlibDecompressor`.
///
/// For each message it inflates the payload, then the `00 00 ff ff` the sender removed (RFC 7692 §7.2.2), never
/// copying the payload to append it. The client's LZ77 window is kept from one message to the next unless
/// `client_no_context_takeover` was agreed, so there is one instance per connection, fed the messages in order.
///
/// Zip-bomb protection: the output grows in steps that never ask for more than `maxBytes + 1` bytes in total, and
/// inflating stops as soon as it has passed `maxBytes`; memory stays within the next power of two above the limit
/// (ByteBuffer's rounding), whatever the message would inflate to.
///
/// Edge cases:
/// - an empty payload is an empty message and leaves the window alone;
/// - a message that ends its DEFLATE stream with a final block (BFINAL=1, RFC 7692 §7.2.3.4, whose example has a
///   byte after the block) is accepted, anything after that block ignored, and the next message starts a new stream
///   with an empty window: zlib's stream cannot go on past a final block, and compress-nio does not expose
///   `inflateSetDictionary`, so a client that refers back past its own final block gets `.corruptData`;
/// - after any error the stream is reset too, but a connection that keeps context must be failed anyway, since the
///   lost window makes its later messages undecodable.
///
/// Loop-confined: use an instance on its connection's event loop only.
final class PerMessageDeflateDecompressor {
    /// Whether the window is dropped after each message (`client_no_context_takeover`).
    let noContextTakeover: Bool
    private let inflater: ZlibDecompressor
    private let allocator: ByteBufferAllocator
    /// `00 00 ff ff`, owned so that zlib's mutable access to it copies it once, not per message.
    private var tail = PerMessageDeflate.syncFlushTail

    /// - Parameters:
    ///   - windowBits: the agreed `client_max_window_bits` (8…15); 15 when none was agreed. The inflater uses at
    ///     least 9, so a client that, like zlib, cannot compress with 8 and uses 9 is still understood.
    ///   - noContextTakeover: `client_no_context_takeover` was agreed.
    ///   - allocator: allocates the inflated messages.
    /// - Throws: `PerMessageDeflateError.zlibFailure` when zlib cannot allocate its stream.
    init(
        windowBits: Int = 15,
        noContextTakeover: Bool = false,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws(PerMessageDeflateError) {
        precondition(PerMessageDeflate.windowBitsRange.contains(windowBits), "window bits must be 8...15")
        self.noContextTakeover = noContextTakeover
        self.allocator = allocator
        do {
            self.inflater = try ZlibDecompressor(algorithm: .deflate, windowSize: Int32(max(9, windowBits)))
        } catch {
            throw .zlibFailure
        }
    }

    /// An inflater for the client side of an agreement.
    convenience init(
        parameters: PerMessageDeflate.Parameters,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws(PerMessageDeflateError) {
        try self.init(
            windowBits: parameters.clientMaxWindowBits,
            noContextTakeover: parameters.clientNoContextTakeover,
            allocator: allocator
        )
    }

    /// Inflates one whole message: the reassembled payload of a frame (or fragments) with RSV1 set.
    ///
    /// - Parameters:
    ///   - payload: the compressed message, without the `00 00 ff ff` tail.
    ///   - maxBytes: the largest inflated message accepted.
    /// - Returns: the inflated message.
    /// - Throws: `PerMessageDeflateError.messageTooLarge` once the output passes `maxBytes`, `.corruptData` for
    ///   invalid DEFLATE data, `.zlibFailure` if zlib fails otherwise.
    func decompress(_ payload: ByteBuffer, maxBytes: Int) throws(PerMessageDeflateError) -> ByteBuffer {
        var output = self.allocator.buffer(capacity: 0)
        try self.decompress(payload, maxBytes: maxBytes, into: &output)
        return output
    }

    /// Inflates one whole message, appending it to `output` (which may already hold bytes; they do not count
    /// towards `maxBytes`). On error `output` holds part of the message: discard it.
    func decompress(
        _ payload: ByteBuffer,
        maxBytes: Int,
        into output: inout ByteBuffer
    ) throws(PerMessageDeflateError) {
        precondition(maxBytes >= 0, "maxBytes must not be negative")
        guard payload.readableBytes > 0 else { return }
        var limit = OutputLimit(start: output.writerIndex, maxBytes: maxBytes, firstStep: payload.readableBytes * 4)
        do throws(PerMessageDeflateError) {
            var input = payload
            var streamEnded = try self.inflate(&input, into: &output, limit: &limit)
            if !streamEnded {
                self.tail.moveReaderIndex(to: 0)
                streamEnded = try self.inflate(&self.tail, into: &output, limit: &limit)
            }
            if streamEnded || self.noContextTakeover {
                try self.resetStream()
            }
        } catch {
            try? self.resetStream()
            throw error
        }
    }

    /// How far the output may grow for one message.
    private struct OutputLimit {
        /// The output's writer index before the message.
        let start: Int
        let maxBytes: Int
        /// The next growth step; doubles as the output grows.
        var step: Int

        init(start: Int, maxBytes: Int, firstStep: Int) {
            self.start = start
            self.maxBytes = maxBytes
            self.step = max(256, firstStep)
        }

        /// Throws once more than `maxBytes` were inflated.
        func check(_ output: ByteBuffer) throws(PerMessageDeflateError) {
            if output.writerIndex - self.start > self.maxBytes {
                throw .messageTooLarge
            }
        }

        /// Makes room for the next step, but never for more than `maxBytes + 1` inflated bytes in all.
        mutating func grow(_ output: inout ByteBuffer) {
            let remaining = self.maxBytes - (output.writerIndex - self.start)
            precondition(remaining >= 0, "check the limit before growing")
            output.reserveCapacity(minimumWritableBytes: remaining < self.step ? remaining + 1 : self.step)
            self.step = max(self.step, output.writerIndex - self.start)
        }
    }

    /// Feeds `input` to the inflater until it is consumed or the DEFLATE stream ends.
    /// - Returns: `true` when the stream ended with a final block (zlib then consumes nothing more).
    private func inflate(
        _ input: inout ByteBuffer,
        into output: inout ByteBuffer,
        limit: inout OutputLimit
    ) throws(PerMessageDeflateError) -> Bool {
        if output.writableBytes == 0 {
            limit.grow(&output)
        }
        while true {
            do {
                try self.inflater.inflate(from: &input, to: &output)
                try limit.check(output)
                // zlib stops with output space left only when the input is used up or the stream has ended; an
                // ended stream answers every later call without consuming input, so the tail is left over.
                return input.readableBytes > 0
            } catch let error as CompressNIOError where error == .bufferOverflow {
                try limit.check(output)
                limit.grow(&output)
            } catch let error as CompressNIOError where error == .inputBufferOverflow {
                // No progress possible without more input: this part of the message is done.
                try limit.check(output)
                return false
            } catch let error as CompressNIOError where error == .corruptData {
                throw .corruptData
            } catch let error as PerMessageDeflateError {
                throw error
            } catch {
                throw .zlibFailure
            }
        }
    }

    private func resetStream() throws(PerMessageDeflateError) {
        do {
            try self.inflater.reset()
        } catch {
            throw .zlibFailure
        }
    }
}

@available(*, unavailable)
extension PerMessageDeflateDecompressor: Sendable {}
