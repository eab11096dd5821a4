import Histogram
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Runs one benchmark: connects the subscribers, publishes, waits for every delivery (or the drain timeout), and
/// reports what arrived, how fast, how late, and what it cost the broker.
public struct BenchRunner: Sendable {
    public let configuration: BenchConfiguration

    public init(configuration: BenchConfiguration) {
        self.configuration = configuration
    }

    public func run() async throws -> BenchReport {
        Self.raiseOpenFileLimit()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: self.configuration.threads)
        do {
            let report = try await self.run(on: group)
            try? await group.shutdownGracefully()
            return report
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func run(on group: MultiThreadedEventLoopGroup) async throws -> BenchReport {
        let configuration = self.configuration
        let loops = Array(group.makeIterator())
        var statsByLoop: [ObjectIdentifier: NIOLoopBoundBox<LoopStats>] = [:]
        for loop in loops {
            statsByLoop[ObjectIdentifier(loop)] = try await loop.submit {
                NIOLoopBoundBox(LoopStats(), eventLoop: loop)
            }.get()
        }
        let stats = statsByLoop
        let counter = DeliveryCounter()
        var report = BenchReport()
        report.subscribers = configuration.subscribers
        report.webSocketSubscribers = configuration.webSocketSubscribers
        report.topics = configuration.topics
        let before = ProcessSample.read(configuration.pids)
        report.brokerResidentBytesBefore = before?.residentBytes

        // 1. Subscribers, a bounded number connecting at once.
        var channels: [any Channel] = []
        var subscriberIndex = 0
        var failures: [String] = []
        while subscriberIndex < configuration.subscribers {
            let batch =
                subscriberIndex..<min(configuration.subscribers, subscriberIndex + configuration.connectConcurrency)
            subscriberIndex = batch.upperBound
            try await withThrowingTaskGroup(of: (any Channel)?.self) { tasks in
                for index in batch {
                    tasks.addTask {
                        do {
                            return try await Self.connectSubscriber(
                                index, configuration: configuration, group: group, stats: stats, counter: counter)
                        } catch {
                            return nil
                        }
                    }
                }
                for try await channel in tasks {
                    if let channel { channels.append(channel) } else { failures.append("subscriber") }
                }
            }
            self.progress("connecting: \(channels.count)/\(configuration.subscribers)")
        }
        report.connected = channels.count
        try await Task.sleep(for: .milliseconds(300))
        let connectedSample = ProcessSample.read(configuration.pids)
        report.brokerResidentBytesConnected = connectedSample?.residentBytes

        // Expected deliveries: each event reaches the connected subscribers of its topic.
        var subscribersPerTopic = Array(repeating: 0, count: configuration.topics)
        for index in 0..<configuration.subscribers { subscribersPerTopic[index % configuration.topics] += 1 }
        for event in 0..<configuration.events {
            report.deliveriesExpected += subscribersPerTopic[event % configuration.topics]
        }
        if report.connected < configuration.subscribers {
            report.deliveriesExpected = report.deliveriesExpected * report.connected / max(1, configuration.subscribers)
        }

        // 2. Publishers.
        let cpuBefore = ProcessSample.read(configuration.pids)
        let started = NIODeadline.now()
        if configuration.events > 0 {
            var publisherChannels: [any Channel] = []
            var done: [EventLoopFuture<Void>] = []
            for index in 0..<min(configuration.publishers, configuration.events) {
                let promise = group.next().makePromise(of: Void.self)
                done.append(promise.futureResult)
                publisherChannels.append(
                    try await Self.connectPublisher(
                        index, configuration: configuration, group: group, done: promise, counter: counter))
            }
            for channel in publisherChannels {
                try await channel.eventLoop.submit {
                    try channel.pipeline.syncOperations.handler(type: PublisherHandler.self).start()
                }.get()
            }
            let expected = report.deliveriesExpected
            let progressTask = Task {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(1))
                    self.progress(
                        "published \(counter.published)/\(configuration.events), delivered \(counter.received)/\(expected)"
                    )
                }
            }
            defer { progressTask.cancel() }
            for future in done { try await future.get() }
            report.publishSeconds = Double((NIODeadline.now() - started).nanoseconds) / 1e9
            for channel in publisherChannels { try? await channel.close() }
        }
        report.eventsPublished = counter.published
        report.publishFailures = counter.publishFailures

        // 3. The last deliveries.
        let drainDeadline =
            NIODeadline.now() + .nanoseconds(Int64(configuration.drainTimeout.components.seconds) * 1_000_000_000)
        while counter.received < report.deliveriesExpected && NIODeadline.now() < drainDeadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let finished = NIODeadline.now()
        let after = ProcessSample.read(configuration.pids)
        report.brokerResidentBytesAfter = after?.residentBytes
        if let cpuBefore, let after {
            let wall = Double((finished - started).nanoseconds) / 1e9
            report.brokerCPUSeconds = after.cpuSeconds - cpuBefore.cpuSeconds
            report.brokerCPUPercent = wall > 0 ? (after.cpuSeconds - cpuBefore.cpuSeconds) / wall * 100 : nil
        }

        // 4. Merge what each loop saw.
        var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
        var lastDelivery: UInt64 = 0
        for loop in loops {
            let box = stats[ObjectIdentifier(loop)]!
            let snapshot = try await loop.submit {
                let value = box.value
                return LoopStatsSnapshot(
                    histogram: value.histogram, received: value.received, outOfOrder: value.outOfOrder,
                    connected: value.connected, lastDeliveryNanoseconds: value.lastDeliveryNanoseconds)
            }.get()
            histogram.add(snapshot.histogram)
            report.deliveriesReceived += snapshot.received
            report.outOfOrder += snapshot.outOfOrder
            lastDelivery = max(lastDelivery, snapshot.lastDeliveryNanoseconds)
        }
        report.setLatency(histogram)
        if lastDelivery > started.uptimeNanoseconds {
            report.deliverySeconds = Double(lastDelivery - started.uptimeNanoseconds) / 1e9
        }
        for channel in channels { channel.close(promise: nil) }
        self.progress(nil)
        return report
    }

    private static func connectSubscriber(
        _ index: Int, configuration: BenchConfiguration, group: MultiThreadedEventLoopGroup,
        stats: [ObjectIdentifier: NIOLoopBoundBox<LoopStats>], counter: DeliveryCounter
    ) async throws -> any Channel {
        let connected = group.next().makePromise(of: Void.self)
        let transport: SubscriberHandler.Transport = index < configuration.webSocketSubscribers ? .webSocket : .sse
        let path = configuration.path(
            transport == .sse ? configuration.subscribePath : configuration.webSocketPath,
            topic: configuration.topic(index % configuration.topics))
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        SubscriberHandler(
                            transport: transport, path: path, host: configuration.host,
                            stats: stats[ObjectIdentifier(channel.eventLoop)]!,
                            connected: connected, counter: counter))
                }
            }
            .connect(host: configuration.host, port: configuration.port)
            .get()
        let timeout = channel.eventLoop.scheduleTask(in: .seconds(10)) {
            connected.fail(BenchError("subscribe timed out"))
        }
        defer { timeout.cancel() }
        do {
            try await connected.futureResult.get()
        } catch {
            try? await channel.close()
            throw error
        }
        return channel
    }

    private static func connectPublisher(
        _ index: Int, configuration: BenchConfiguration, group: MultiThreadedEventLoopGroup,
        done: EventLoopPromise<Void>, counter: DeliveryCounter
    ) async throws -> any Channel {
        try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        PublisherHandler(index: index, configuration: configuration, done: done, counter: counter))
                }
            }
            .connect(host: configuration.host, port: configuration.port)
            .get()
    }

    private func progress(_ line: String?) {
        guard self.configuration.showProgress, isatty(2) != 0 else { return }
        let text = "\r\u{1B}[K" + (line ?? "")
        _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }

    /// Many subscribers need many sockets: lift the soft limit on open files to the hard one.
    public static func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
