import EventBroker
import NIOCore

/// The `permessage-deflate` compressors of the server: one per event loop (and agreed window size), each created on
/// first use on its loop, plus the last event frame each compressed.
///
/// Server messages are compressed without context takeover, so an event's compressed frame is the same for every
/// connection on the loop that agreed the same window: the first delivery compresses it, the others reuse it, and a
/// compressed fan-out costs no allocation per connection either.
final class WebSocketCompression: Sendable {
    /// One loop's state. Loop-confined.
    final class Loop {
        var compressors: [Int: PerMessageDeflateCompressor] = [:]
        /// The last event frame compressed per window size.
        var lastEventFrames: [Int: (id: EventID, frame: ByteBuffer)] = [:]
    }

    private let loops: [ObjectIdentifier: NIOLoopBoundBox<Loop?>]

    init(eventLoops: some Sequence<any EventLoop>) {
        var loops: [ObjectIdentifier: NIOLoopBoundBox<Loop?>] = [:]
        for loop in eventLoops {
            loops[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeEmptyBox(valueType: Loop.self, eventLoop: loop)
        }
        self.loops = loops
    }

    /// The compressed frame of `event` for a connection on `eventLoop` that agreed `windowBits`. Must run there.
    func eventFrame0(_ event: BrokerEvent, windowBits: Int, on eventLoop: any EventLoop) -> ByteBuffer {
        let loop = self.loop0(eventLoop)
        if let last = loop.lastEventFrames[windowBits], last.id == event.id { return last.frame }
        let plain = event.webSocketFrame(allocator: ByteBufferAllocator())
        let frame = self.compressedFrame(
            WebSocketEventFrame.payload(of: plain), windowBits: windowBits, loop: loop)
        loop.lastEventFrames[windowBits] = (event.id, frame)
        return frame
    }

    /// A compressed text frame holding `payload`, for a connection on `eventLoop`. Must run there.
    func textFrame0(_ payload: ByteBuffer, windowBits: Int, on eventLoop: any EventLoop) -> ByteBuffer {
        self.compressedFrame(payload, windowBits: windowBits, loop: self.loop0(eventLoop))
    }

    private func compressedFrame(_ payload: ByteBuffer, windowBits: Int, loop: Loop) -> ByteBuffer {
        let compressor: PerMessageDeflateCompressor
        if let existing = loop.compressors[windowBits] {
            compressor = existing
        } else {
            do {
                compressor = try PerMessageDeflateCompressor(windowBits: windowBits)
            } catch {
                preconditionFailure("zlib could not allocate a compressor: \(error)")
            }
            loop.compressors[windowBits] = compressor
        }
        return PerMessageDeflateCompressor.textFrame(compressedPayload: compressor.compress(payload))
    }

    private func loop0(_ eventLoop: any EventLoop) -> Loop {
        guard let box = self.loops[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("event loop \(eventLoop) is not one of the server's")
        }
        if let loop = box.value { return loop }
        let loop = Loop()
        box.value = loop
        return loop
    }
}
