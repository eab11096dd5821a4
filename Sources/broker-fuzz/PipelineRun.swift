import EventBroker
import HTTPServer
import NIOCore
import NIOEmbedded

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One connection through the real pipeline on an `EmbeddedChannel`, over a broker of its own: an optional
/// WebSocket upgrade, the input's bytes in pieces, then whatever `Control` asks, then the close.
///
/// No sockets, threads or sleeps: timers run by moving the embedded loop's clock. After the close, the connection
/// must have given back its connection slot and every subscription, and once the run's objects go out of scope the
/// channel and the broker must be freed (nothing of the connection is left in a reference cycle), or the run stops
/// with `preconditionFailure`: a leak is a finding like a crash. `BROKER_FUZZ_LEAKS=0` turns the second check off.
enum PipelineRun {
    /// Whether a channel or broker left alive after a run is a failure (`BROKER_FUZZ_LEAKS` unset, or not `0`).
    static let checksLeaks = getenv("BROKER_FUZZ_LEAKS").map { String(cString: $0) != "0" } ?? true

    /// The run's channel and broker, held weakly: both nil once everything the run made has been freed.
    struct Leftovers {
        weak var channel: EmbeddedChannel?
        weak var broker: Broker?
    }

    /// What happens around the input, from the control byte.
    ///
    /// ```
    /// bits 0-2  move the loop's clock after the input: 0, 1 s, 15 s (a heartbeat), 30 s (two: a WebSocket ping,
    ///           then the close for no pong), 31 s (the request timeout), 76 s (the idle timeout); 6 and 7: 0
    /// bit 3     publish an event on `news` and a broadcast after the input (deliveries to streams and sockets)
    /// bit 4     the channel is unwritable while the input arrives (backpressure), writable again at the end
    /// bit 5     ask the connection to quiesce before the close (graceful shutdown)
    /// bit 6     run the loop only after the last piece, not after each one
    /// bit 7     authorization on (`FuzzEntryPoints.FuzzTokenVerifier`: `Bearer all` may do anything, no token
    ///           only subscribe), and the published event is private
    /// ```
    struct Control {
        let rawValue: UInt8

        var advance: TimeAmount {
            switch self.rawValue & 0x07 {
            case 1: return .seconds(1)
            case 2: return .seconds(15)
            case 3: return .seconds(30)
            case 4: return .seconds(31)
            case 5: return .seconds(76)
            default: return .zero
            }
        }
        var publishes: Bool { self.rawValue & 0x08 != 0 }
        var startsUnwritable: Bool { self.rawValue & 0x10 != 0 }
        var quiesces: Bool { self.rawValue & 0x20 != 0 }
        var runsBetweenPieces: Bool { self.rawValue & 0x40 == 0 }
        var authorizes: Bool { self.rawValue & 0x80 != 0 }
    }

    /// `bytes` cut into 1 to 4 pieces (`split & 3`, plus one) at points derived from `split` and the length, so the
    /// parsers see requests and frames cut anywhere.
    static func pieces(of bytes: ArraySlice<UInt8>, split: UInt8) -> [ArraySlice<UInt8>] {
        let count = Int(split & 0x03) + 1
        guard count > 1, bytes.count > 1 else { return [bytes] }
        var cuts: [Int] = []
        var state = UInt32(split) &* 2_654_435_761 &+ UInt32(truncatingIfNeeded: bytes.count)
        for _ in 1..<count {
            state = state &* 1_103_515_245 &+ 12_345
            cuts.append(bytes.startIndex + Int((state >> 8) % UInt32(bytes.count)))
        }
        cuts.sort()
        var pieces: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex
        for cut in cuts + [bytes.endIndex] where cut > start {
            pieces.append(bytes[start..<cut])
            start = cut
        }
        return pieces
    }

    /// Runs one connection.
    /// - Parameters:
    ///   - upgrade: A WebSocket handshake to send first; it must be answered `101`.
    ///   - pieces: The input, written as inbound bytes one piece at a time.
    static func run(control: Control, upgrade: [UInt8]? = nil, pieces: [ArraySlice<UInt8>]) {
        let leftovers = Self.connect(control: control, upgrade: upgrade, pieces: pieces)
        guard Self.checksLeaks else { return }
        precondition(leftovers.channel == nil, "The closed channel was not freed: it is in a reference cycle")
        precondition(leftovers.broker == nil, "The broker was not freed: something of the closed connection holds it")
    }

    private static func connect(control: Control, upgrade: [UInt8]?, pieces: [ArraySlice<UInt8>]) -> Leftovers {
        let loop = EmbeddedEventLoop()
        let connections = FuzzEntryPoints.Connections(
            eventLoop: loop, clock: BrokerClock { 1_763_780_248_000_000 }, authorizing: control.authorizes)
        let channel = EmbeddedChannel(loop: loop)
        do {
            try connections.configure(channel)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40_000)).wait()
        } catch {
            preconditionFailure("The pipeline could not be set up: \(error)")
        }
        var output = Output()
        if let upgrade {
            Self.write(upgrade[...], to: channel)
            loop.run()
            output.drain(channel)
            precondition(output.head.starts(with: Array("HTTP/1.1 101 ".utf8)), "The upgrade was refused")
        }
        if control.startsUnwritable {
            channel.isWritable = false
            channel.pipeline.fireChannelWritabilityChanged()
        }
        for piece in pieces {
            guard channel.isActive, Self.write(piece, to: channel) else { break }
            if control.runsBetweenPieces {
                loop.run()
                output.drain(channel)
            }
        }
        loop.run()
        output.drain(channel)
        if control.publishes {
            let broker = connections.broker
            let news = try! TopicName("news")
            _ = try? broker.publish(
                PublishRequest(topics: [news], data: #"{"n":1}"#, dataIsJSON: true, isPrivate: control.authorizes))
            _ = try? broker.broadcast(data: "everyone")
            loop.run()
            output.drain(channel)
        }
        if control.startsUnwritable, channel.isActive {
            channel.isWritable = true
            channel.pipeline.fireChannelWritabilityChanged()
            loop.run()
            output.drain(channel)
        }
        if control.advance != .zero {
            loop.advanceTime(by: control.advance)
            output.drain(channel)
        }
        if control.quiesces {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            loop.run()
            output.drain(channel)
        }
        _ = try? channel.finish(acceptAlreadyClosed: true)
        loop.run()
        precondition(connections.openConnections == 0, "A closed connection kept its connection slot")
        precondition(connections.subscribers == 0, "A closed connection is still subscribed")
        if upgrade == nil, !output.head.isEmpty {
            precondition(output.head.starts(with: Array("HTTP/1.1 ".utf8)), "The answer is not HTTP/1.1")
        }
        connections.broker.shutdown()
        do {
            try loop.syncShutdownGracefully()
        } catch {
            preconditionFailure("The loop did not shut down: \(error)")
        }
        return Leftovers(channel: channel, broker: connections.broker)
    }

    /// Writes one piece; false when the channel refused it (closed, or an error reached the pipeline's end).
    @discardableResult
    private static func write(_ piece: ArraySlice<UInt8>, to channel: EmbeddedChannel) -> Bool {
        do {
            try channel.writeInbound(channel.allocator.buffer(bytes: piece))
            return true
        } catch {
            return false
        }
    }

    /// What the server wrote: its first bytes are kept to check the answer's status line. With
    /// `BROKER_FUZZ_VERBOSE` set (when replaying), all of it is printed too.
    struct Output {
        static let isVerbose = getenv("BROKER_FUZZ_VERBOSE") != nil

        private(set) var head: [UInt8] = []

        mutating func drain(_ channel: EmbeddedChannel) {
            while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
                if self.head.count < 16 { self.head += buffer.readableBytesView.prefix(16 - self.head.count) }
                if Self.isVerbose { print(String(decoding: buffer.readableBytesView, as: UTF8.self), terminator: "") }
            }
        }
    }
}
