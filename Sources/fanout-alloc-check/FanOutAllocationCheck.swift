import EventBroker
import HTTPServer
import Logging
import MallocInterposerSwift
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Counts the allocations of delivering one event to N SSE (or, with `--ws`, WebSocket) subscribers on one event
/// loop; with `--publishes N`, the allocations per publish of N REST publishes with no subscriber instead.
///
/// Run it with the interposer preloaded (the allocation test does):
/// ```
/// LD_PRELOAD=.build/debug/libMallocInterposerSwift.so .build/debug/fanout-alloc-check 1000
/// ```
/// A real server on 127.0.0.1 with one event loop; N raw-socket subscribers read by one plain thread into one
/// preallocated buffer, so the client side allocates nothing. After a warm-up, counting brackets one publish until
/// every subscriber has its bytes. Prints `{"subscribers":N,"mallocs":M,"mallocBytes":B}`.
@main
struct FanOutAllocationCheck {
    static func main() async throws {
        let subscribers = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 1000
        MallocInterposerSwift.initialize()
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)

        var logger = Logger(label: "alloc-check")
        logger.logLevel = .critical
        var configuration = BrokerConfiguration(host: "127.0.0.1", port: 0, eventLoopThreads: 1)
        configuration.bus.heartbeatInterval = .seconds(3600)
        configuration.maxConnectionsPerAddress = 0
        configuration.maxConnections = 0
        configuration.publishRate = 0
        // Short rings, so that the publishes' warm-up fills them and the measured ones find history at its steady size.
        configuration.bus.history.eventsPerTopic = 8
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let broker = Broker(group: group, configuration: configuration.bus, logger: logger)
        let server = BrokerServer(configuration: configuration, broker: broker, group: group, logger: logger)
        let port = try await server.start()

        if let publishes = Self.option("--publishes") {
            let perPublish = try Self.mallocsPerPublish(publishes, port: port)
            print("{\"publishes\":\(publishes),\"mallocsPerPublish\":\(perPublish)}")
            try await Self.tearDown(reader: nil, sockets: [], server: server, broker: broker, group: group)
            return
        }

        // With `--connections`, report what the open streams keep on the heap instead.
        let measureConnections = CommandLine.arguments.contains("--connections")
        // With `--ws`, the subscribers are WebSockets (and the frame they share is the WebSocket one).
        let transport: Transport = CommandLine.arguments.contains("--ws") ? .webSocket : .sse
        if measureConnections {
            MallocInterposerSwift.reset()
            MallocInterposerSwift.hook()
        }
        let sockets = try (0..<subscribers).map { _ in try Self.subscribe(port: port, transport: transport) }
        let reader = SocketReader(sockets: sockets)
        reader.start()
        // Wait for every `connected` frame.
        guard Self.wait(until: { broker.stats().connections[transport] == subscribers && reader.isQuiet(for: 200) })
        else {
            fatalError("only \(broker.stats().connections[transport] ?? 0) of \(subscribers) subscribed")
        }
        if measureConnections {
            MallocInterposerSwift.unhook()
            let statistics = MallocInterposerSwift.getStatistics()
            let live = statistics.mallocBytesCount - statistics.freeBytesCount
            let blocks = statistics.mallocCount - statistics.freeCount
            print(
                "{\"subscribers\":\(subscribers),\"liveHeapBytesPerConnection\":\(live / subscribers),\"liveBlocksPerConnection\":\(Double(blocks) / Double(subscribers))}"
            )
            try await Self.tearDown(reader: reader, sockets: sockets, server: server, broker: broker, group: group)
            return
        }
        let topic = try TopicName("alloc")
        // Warm up: buffers, arrays and NIO's write queues reach their steady size.
        for index in 0..<5 {
            let before = reader.totalBytes
            _ = try broker.publish(PublishRequest(topics: [topic], data: "warm-up \(index)"))
            guard Self.wait(until: { reader.totalBytes > before && reader.isQuiet(for: 50) }) else {
                fatalError("warm-up stalled")
            }
        }
        // The measured event's id is the next one; its frame size tells how many bytes every subscriber gets.
        let nextID = EventID(rawValue: (broker.stats().lastEventID?.rawValue ?? 0) + 1)
        let frameBytes: Int
        switch transport {
        case .webSocket:
            frameBytes =
                WebSocketEventFrame.encode(
                    id: nextID, topics: [topic], eventType: nil, data: "measured", dataIsJSON: false,
                    allocator: ByteBufferAllocator()
                ).readableBytes
        default:
            frameBytes =
                SSEFrame.encode(id: nextID, event: nil, data: "measured", allocator: ByteBufferAllocator())
                .readableBytes
        }
        let target = reader.totalBytes + subscribers * frameBytes
        MallocInterposerSwift.reset()
        MallocInterposerSwift.hook()
        _ = try broker.publish(PublishRequest(topics: [topic], data: "measured"))
        let delivered = Self.wait(until: { reader.totalBytes >= target })
        MallocInterposerSwift.unhook()
        let statistics = MallocInterposerSwift.getStatistics()
        guard delivered else { fatalError("measured event did not reach every subscriber") }
        print(
            "{\"subscribers\":\(subscribers),\"mallocs\":\(statistics.mallocCount),\"mallocBytes\":\(statistics.mallocBytesCount)}"
        )
        try await Self.tearDown(reader: reader, sockets: sockets, server: server, broker: broker, group: group)
    }

    static func tearDown(
        reader: SocketReader?, sockets: [Int32], server: BrokerServer, broker: Broker,
        group: MultiThreadedEventLoopGroup
    ) async throws {
        reader?.stop()
        for socket in sockets { close(socket) }
        await server.stop()
        broker.shutdown()
        try await group.shutdownGracefully()
    }

    /// The integer after `name` in the arguments.
    static func option(_ name: String) -> Int? {
        guard let index = CommandLine.arguments.firstIndex(of: name), index + 1 < CommandLine.arguments.count else {
            return nil
        }
        return Int(CommandLine.arguments[index + 1])
    }

    /// The mean allocations of one REST publish, as the bench sends them (a 128-byte text body, `?topic=` over 100
    /// topics), on one keep-alive connection whose client allocates nothing: it sends from requests built
    /// beforehand and reads each answer, whose size it knows, into one buffer. Warms up with as many publishes first.
    static func mallocsPerPublish(_ count: Int, port: Int) throws -> Double {
        let fd = try Self.connect(port: port)
        defer { close(fd) }
        let body = String(repeating: "x", count: 128)
        // Topics of one length and ids of one digit count: every answer has the same size.
        let requests = (0..<100).map { index in
            Array(
                ("POST /api/events/publish?topic=alloc-\(index + 100) HTTP/1.1\r\nHost: x\r\n"
                    + "Content-Type: text/plain\r\nContent-Length: 128\r\n\r\n\(body)").utf8)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        // The first answer tells the size of all.
        Self.send(requests[0], to: fd)
        let answerBytes = recv(fd, buffer.baseAddress, buffer.count, 0)
        precondition(answerBytes > 0, "no answer to the first publish: errno \(errno)")
        precondition(
            buffer.starts(with: "HTTP/1.1 200 ".utf8),
            "the first publish was refused: \(String(decoding: buffer[..<answerBytes], as: UTF8.self))")
        func publish(_ index: Int) {
            Self.send(requests[index % requests.count], to: fd)
            var received = 0
            while received < answerBytes {
                let count = recv(fd, buffer.baseAddress! + received, answerBytes - received, 0)
                precondition(count > 0, "the connection ended: errno \(errno)")
                received += count
            }
            precondition(buffer.starts(with: "HTTP/1.1 200 ".utf8), "a publish was refused")
        }
        for index in 1...count { publish(index) }
        MallocInterposerSwift.reset()
        MallocInterposerSwift.hook()
        for index in 1...count { publish(index) }
        MallocInterposerSwift.unhook()
        return Double(MallocInterposerSwift.getStatistics().mallocCount) / Double(count)
    }

    static func send(_ bytes: [UInt8], to fd: Int32) {
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        precondition(sent == bytes.count, "short send: \(sent) of \(bytes.count)")
    }

    /// Polls `condition` every millisecond for up to ten seconds, without allocating.
    static func wait(until condition: () -> Bool) -> Bool {
        for _ in 0..<10_000 {
            if condition() { return true }
            usleep(1000)
        }
        return condition()
    }

    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        precondition(connected == 0, "connect failed: errno \(errno)")
        return fd
    }

    static func subscribe(port: Int, transport: Transport) throws -> Int32 {
        let fd = try Self.connect(port: port)
        let request: [UInt8]
        switch transport {
        case .webSocket:
            request = Array(
                ("GET /api/ws?topic=alloc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").utf8)
        default:
            request = Array("GET /api/events?topic=alloc HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        }
        Self.send(request, to: fd)
        return fd
    }
}

/// Reads every socket on one plain thread into one preallocated buffer and counts bytes; allocates nothing after
/// `start`.
final class SocketReader: @unchecked Sendable {
    private let sockets: [Int32]
    private let counters = NIOLockedValueBox((total: 0, lastReadNanoseconds: UInt64(0), running: true))
    private var thread = pthread_t()

    init(sockets: [Int32]) {
        self.sockets = sockets
    }

    var totalBytes: Int { self.counters.withLockedValue { $0.total } }

    func isQuiet(for milliseconds: UInt64) -> Bool {
        let last = self.counters.withLockedValue { $0.lastReadNanoseconds }
        return NIODeadline.now().uptimeNanoseconds - last > milliseconds * 1_000_000
    }

    func start() {
        let unmanaged = Unmanaged.passRetained(self)
        pthread_create(
            &self.thread, nil,
            { argument in
                let reader = Unmanaged<SocketReader>.fromOpaque(argument!).takeRetainedValue()
                reader.run()
                return nil
            }, unmanaged.toOpaque())
    }

    func stop() {
        self.counters.withLockedValue { $0.running = false }
        pthread_join(self.thread, nil)
    }

    private func run() {
        var descriptors = self.sockets.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        while self.counters.withLockedValue({ $0.running }) {
            let ready = descriptors.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), 10) }
            guard ready > 0 else { continue }
            var read = 0
            for index in descriptors.indices where descriptors[index].revents & Int16(POLLIN) != 0 {
                let count = recv(descriptors[index].fd, buffer.baseAddress, buffer.count, 0)
                if count > 0 { read += count }
            }
            let now = NIODeadline.now().uptimeNanoseconds
            self.counters.withLockedValue {
                $0.total += read
                $0.lastReadNanoseconds = now
            }
        }
    }
}
