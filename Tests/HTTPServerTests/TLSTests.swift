import BrokerTLS
import EventBroker
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import HTTPServer

/// HTTPS on the listener: `curl` and Python's `websockets` against a real server with a certificate `openssl` made
/// for the test; the start-up errors for unusable files; and, on `EmbeddedChannel`s, that a stream's handlers go
/// behind a handler in front of HTTP (where TLS sits) rather than in front of it.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct TLSTests {
    /// Runs `body` against a server on 127.0.0.1 serving HTTPS with a fresh certificate, then stops both.
    static func withTLSServer(
        _ configure: (inout BrokerConfiguration) -> Void = { _ in },
        _ body: (TestServer, TestCertificate) async throws -> Void
    ) async throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let security = try certificate.files.makeConnectionSecurity()
        let server = try await TestServer {
            $0.connectionSecurity = security
            configure(&$0)
        }
        do {
            try await body(server, certificate)
        } catch {
            try await server.stop()
            throw error
        }
        try await server.stop()
    }

    /// `curl -sS` with `arguments`, never for longer than `maxTime` seconds.
    static func curl(_ arguments: [String], maxTime: Int = 10) throws -> ExternalCommand.Result {
        try ExternalCommand.run("/usr/bin/env", ["curl", "-sS", "--max-time", String(maxTime)] + arguments)
    }

    /// Publishes `data` to `topic` over HTTPS and returns the event id.
    static func publish(
        _ data: String, topic: String, port: Int, certificate: TestCertificate
    ) throws -> String {
        let result = try Self.curl([
            "--cacert", certificate.certificatePath, "-H", "Content-Type: application/json",
            "--data", #"{"topic":"\#(topic)","data":"\#(data)"}"#, "https://127.0.0.1:\(port)/api/events/publish",
        ])
        guard result.status == 0, case .string(let id)? = try JSONParser.parse(Array(result.output.utf8))["id"] else {
            throw ExternalCommand.Failed(
                description: "publish failed: \(result.status) \(result.output)\(result.errors)")
        }
        return id
    }

    /// The elements of a JSON array; none for anything else.
    static func array(_ value: JSONValue?) -> [JSONValue] {
        guard case .array(let elements)? = value else { return [] }
        return elements
    }

    // MARK: Serving HTTPS

    @Test func healthAnswersOverHTTPSForAClientTrustingTheCertificate() async throws {
        try await Self.withTLSServer { server, certificate in
            for host in ["127.0.0.1", "localhost"] {
                let result = try Self.curl([
                    "--cacert", certificate.certificatePath, "--resolve", "localhost:\(server.port):127.0.0.1",
                    "-w", "\n%{http_code} %{content_type}", "https://\(host):\(server.port)/api/health",
                ])
                #expect(result.status == 0, "\(host): \(result.errors)")
                let lines = result.output.split(separator: "\n")
                #expect(lines.last == "200 application/json", "\(host)")
                let health = try JSONParser.parse(Array(lines.dropLast().joined(separator: "\n").utf8))
                #expect(health["status"] == .string("ok"), "\(host)")
            }
        }
    }

    @Test func publishOverHTTPSLandsInHistory() async throws {
        try await Self.withTLSServer { server, certificate in
            let id = try Self.publish("hello", topic: "orders", port: server.port, certificate: certificate)
            let history = try Self.curl([
                "--cacert", certificate.certificatePath,
                "https://127.0.0.1:\(server.port)/api/events/history?topic=orders",
            ])
            #expect(history.status == 0, "\(history.errors)")
            let events = Self.array(try JSONParser.parse(Array(history.output.utf8))["events"])
            #expect(events.map { $0["id"] } == [.string(id)])
            #expect(events.first?["data"] == .string("hello"))
        }
    }

    @Test func eventStreamOverTLSReceivesAnEventPublishedWhileItIsOpen() async throws {
        try await Self.withTLSServer { server, certificate in
            let stream = Process()
            stream.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            stream.arguments = [
                "curl", "-sS", "-N", "--cacert", certificate.certificatePath, "--max-time", "3",
                "https://127.0.0.1:\(server.port)/api/events?topic=t",
            ]
            let output = Pipe()
            let errors = Pipe()
            stream.standardOutput = output
            stream.standardError = errors
            try stream.run()
            defer { ExternalCommand.stop(stream) }
            #expect(try server.waitUntil { server.broker.stats().connections[.sse] == 1 })
            let id = try Self.publish("over tls", topic: "t", port: server.port, certificate: certificate)
            // curl ends the stream itself after --max-time (exit 28).
            let result = ExternalCommand.finish(stream, output: output, errors: errors)
            #expect(result.status == 28, "\(result.errors)")
            #expect(result.output.contains("event: connected\n"))
            #expect(result.output.contains("id: \(id)\ndata: over tls\n\n"), "\(result.output)")
        }
    }

    @Test func webSocketOverWSSGetsItsAckAndTheEventItPublished() async throws {
        let script = """
            import json, ssl, sys
            from websockets.sync.client import connect
            context = ssl.create_default_context(cafile=sys.argv[2])
            url = f"wss://127.0.0.1:{sys.argv[1]}/api/ws?topic=t"
            with connect(url, ssl=context, open_timeout=5, close_timeout=2) as ws:
                seen = [json.loads(ws.recv(timeout=5))]
                ws.send(json.dumps({"type": "publish", "topic": "t", "data": "over wss", "ref": 7}))
                seen += [json.loads(ws.recv(timeout=5)), json.loads(ws.recv(timeout=5))]
            print(json.dumps(seen))
            """
        try await Self.withTLSServer { server, certificate in
            let result = try ExternalCommand.run(
                "/usr/bin/env", ["python3", "-c", script, String(server.port), certificate.certificatePath])
            try #require(result.status == 0, "\(result.output)\(result.errors)")
            let messages = Self.array(try JSONParser.parse(Array(result.output.utf8)))
            #expect(messages.first?["type"] == .string("connected"))
            let ack = try #require(messages.first { $0["type"] == .string("ack") })
            let event = try #require(messages.first { $0["type"] == .string("event") })
            #expect(ack["ref"] == .number("7"))
            #expect(event["data"] == .string("over wss"))
            #expect(event["id"] == ack["id"])
        }
    }

    @Test func plainHTTPToTheTLSPortGetsNoHTTPAnswer() async throws {
        try await Self.withTLSServer { server, _ in
            let result = try Self.curl(
                ["-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(server.port)/api/health"], maxTime: 5)
            #expect(result.output == "000")
            #expect(result.status != 0)
            #expect(result.status != 28, "the connection was left open instead of failing")
        }
    }

    @Test func clientNotTrustingTheCertificateFailsVerification() async throws {
        try await Self.withTLSServer { server, _ in
            let result = try Self.curl(["https://127.0.0.1:\(server.port)/api/health"])
            #expect(result.status == 60, "\(result.errors)")
        }
    }

    @Test func shutdownEndsTLSStreamsWithARetryHint() async throws {
        try await Self.withTLSServer { server, certificate in
            let stream = Process()
            stream.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            stream.arguments = [
                "curl", "-sS", "-N", "--cacert", certificate.certificatePath, "--max-time", "10",
                "https://127.0.0.1:\(server.port)/api/events?topic=t",
            ]
            let output = Pipe()
            let errors = Pipe()
            stream.standardOutput = output
            stream.standardError = errors
            try stream.run()
            defer { ExternalCommand.stop(stream) }
            #expect(try server.waitUntil { server.broker.stats().connections[.sse] == 1 })
            let started = ContinuousClock.now
            await server.server.stop()
            let result = ExternalCommand.finish(stream, output: output, errors: errors)
            #expect(result.status == 0, "curl did not see the stream end cleanly: \(result.errors)")
            #expect(result.output.hasSuffix("retry: 1000\n\n"), "\(result.output)")
            #expect(ContinuousClock.now - started < .seconds(5))
        }
    }

    @Test func stalledTLSSubscriberIsCutAsASlowConsumer() async throws {
        try await Self.withTLSServer({ $0.slowConsumerBytes = 64 * 1024 }) { server, certificate in
            // curl writes what it receives to a pipe nobody reads: once the pipe is full, curl stops reading the
            // socket, and the server's writes pile up behind the TLS handler as they would behind a stalled client.
            let stalled = Process()
            stalled.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            stalled.arguments = [
                "curl", "-sS", "-N", "--cacert", certificate.certificatePath, "--max-time", "30",
                "https://127.0.0.1:\(server.port)/api/events?topic=firehose",
            ]
            stalled.standardOutput = Pipe()
            stalled.standardError = Pipe()
            try stalled.run()
            defer { ExternalCommand.stop(stalled) }
            #expect(try server.waitUntil { server.broker.stats().connections[.sse] == 1 })
            // The kernel buffers several MiB per socket before the broker's own cap is reached: publish until the
            // stream is cut, at most 48 MiB (1500 events of 32 KiB).
            let topic = try TopicName("firehose")
            let payload = String(repeating: "x", count: 32 * 1024)
            var published = 0
            while published < 1500 && server.broker.stats().connections[.sse] == 1 {
                _ = try server.broker.publish(PublishRequest(topics: [topic], data: payload))
                published += 1
                if published % 100 == 0 { usleep(10_000) }
            }
            // Closing sends close_notify and waits at most a second for the client's.
            #expect(
                try server.waitUntil { server.broker.stats().connections[.sse] == 0 },
                "the stalled subscriber was not cut after \(published) events")
        }
    }

    // MARK: Start-up errors

    /// What reading `files` threw, or nil if they make a usable TLS set-up.
    static func startUpError(_ files: TLSFiles) -> TLSSetupError? {
        do {
            _ = try files.makeConnectionSecurity()
            return nil
        } catch {
            return error
        }
    }

    @Test func missingKeyFileFailsTheStartNamingTheFile() async throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let missing = certificate.path("missing-key.pem")
        let error = try #require(
            Self.startUpError(
                TLSFiles(certificateChainPath: certificate.certificatePath, privateKeyPath: missing)))
        #expect(error.file == .privateKey)
        #expect(error.description == "TLS private key \(missing): no such file")
    }

    @Test func unusableFilesFailTheStartSayingWhy() async throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let other = certificate.path("other-key.pem")
        let generated = try ExternalCommand.run(
            "/usr/bin/openssl",
            ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", other])
        try #require(generated.status == 0, "\(generated.errors)")
        let encrypted = certificate.path("encrypted-key.pem")
        let encryption = try ExternalCommand.run(
            "/usr/bin/openssl",
            ["pkey", "-in", certificate.keyPath, "-aes256", "-passout", "pass:secret", "-out", encrypted])
        try #require(encryption.status == 0, "\(encryption.errors)")
        let garbage = try certificate.write("not a certificate\n", to: "garbage.pem")
        let empty = try certificate.write("", to: "empty.pem")
        let cert = certificate.certificatePath
        let key = certificate.keyPath
        let missing = certificate.path("missing.pem")
        let directory = certificate.directory.path
        let cases: [(String, String, TLSSetupError)] = [
            (missing, key, .init(.certificateChain, path: missing, reason: "no such file")),
            (garbage, key, .init(.certificateChain, path: garbage, reason: #"not PEM (no "-----BEGIN" line)"#)),
            (empty, key, .init(.certificateChain, path: empty, reason: "the file is empty")),
            (key, cert, .init(.certificateChain, path: key, reason: "holds a private key, not a certificate")),
            (cert, cert, .init(.privateKey, path: cert, reason: "holds a certificate, not a private key")),
            (cert, directory, .init(.privateKey, path: directory, reason: "is a directory")),
            (
                cert, encrypted,
                .init(.privateKey, path: encrypted, reason: "the key is encrypted; the broker needs it unencrypted")
            ),
            (cert, other, .init(.privateKey, path: other, reason: "does not match the certificate in \(cert)")),
        ]
        for (chainPath, keyPath, expected) in cases {
            let error = Self.startUpError(
                TLSFiles(certificateChainPath: chainPath, privateKeyPath: keyPath))
            #expect(error == expected)
        }
    }

    @Test func serveCommandPrintsOneLineNamingTheMissingKeyAndExitsNonZero() async throws {
        let binary = try #require(ShutdownTests.brokerBinary(), "broker-cli is built by `swift build` before the tests")
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let missing = certificate.path("missing-key.pem")
        let result = try ExternalCommand.run(
            binary.path, ["serve", "--port", "0", "--tls-cert", certificate.certificatePath, "--tls-key", missing])
        #expect(result.status == 1)
        #expect(result.errors == "Error: TLS private key \(missing): no such file\n")
        let alone = try ExternalCommand.run(
            binary.path, ["serve", "--port", "0", "--tls-cert", certificate.certificatePath])
        #expect(alone.status == 64)
        #expect(alone.errors.contains("--tls-cert needs --tls-key"))
    }

    @Test func serveCommandLogsAnHTTPSURL() async throws {
        let binary = try #require(ShutdownTests.brokerBinary(), "broker-cli is built by `swift build` before the tests")
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let process = Process()
        process.executableURL = binary
        process.arguments = ["serve", "--port", "0", "--log-level", "notice"]
        process.environment = ["BROKER_TLS_CERT": certificate.certificatePath, "BROKER_TLS_KEY": certificate.keyPath]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        defer { ExternalCommand.stop(process) }
        var log = ""
        let deadline = ContinuousClock.now + .seconds(20)
        while !log.contains("listening"), process.isRunning, ContinuousClock.now < deadline {
            log += String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
        }
        let port = try #require(log.firstMatch(of: /port=(\d+)/).flatMap { Int($0.1) }, "\(log)")
        #expect(log.contains("url=https://127.0.0.1:\(port)"), "\(log)")
        let health = try Self.curl(["--cacert", certificate.certificatePath, "https://127.0.0.1:\(port)/api/health"])
        #expect(health.status == 0, "\(health.errors)")
    }

    // MARK: Pipeline positions

    /// Stands in for TLS in front of the HTTP handlers: passes inbound bytes on, brackets every outbound buffer.
    final class FrontHandler: ChannelDuplexHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        typealias OutboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            var buffer = Self.unwrapOutboundIn(data)
            var bracketed = context.channel.allocator.buffer(capacity: buffer.readableBytes + 2)
            bracketed.writeStaticString("<")
            bracketed.writeBuffer(&buffer)
            bracketed.writeStaticString(">")
            context.write(Self.wrapOutboundOut(bracketed), promise: promise)
        }
    }

    /// A connection whose pipeline has a `FrontHandler` in front of the HTTP handlers, after `request`.
    static func connection(sending request: String) throws -> (channel: EmbeddedChannel, loop: EmbeddedEventLoop) {
        let loop = EmbeddedEventLoop()
        let broker = Broker(
            eventLoops: [loop], configuration: BusConfiguration(heartbeatInterval: .seconds(15), batchWindow: .zero),
            clock: BrokerClock { 1_000_000_000_000 })
        let configuration = BrokerConfiguration()
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(FrontHandler())
        try HTTPPipeline.configure(
            channel, api: RESTAPI(broker: broker, configuration: configuration, startedAt: .now),
            configuration: configuration, logger: Logger(label: "test"))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: request))
        loop.run()
        return (channel, loop)
    }

    /// Every buffer written so far.
    static func written(_ channel: EmbeddedChannel) throws -> [String] {
        var written: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written.append(String(buffer: buffer)) }
        return written
    }

    @Test func eventStreamWritesThroughTheHandlerInFrontOfHTTP() throws {
        let (channel, _) = try Self.connection(sending: "GET /api/events?topic=news HTTP/1.1\r\nHost: x\r\n\r\n")
        let written = try Self.written(channel)
        #expect(written.count == 2, "the head and the connected event")
        #expect(written.allSatisfy { $0.hasPrefix("<") && $0.hasSuffix(">") }, "\(written)")
        #expect(written.first?.hasPrefix("<HTTP/1.1 200 OK\r\nContent-Type: text/event-stream") == true)
        _ = try channel.pipeline.syncOperations.handler(type: FrontHandler.self)
        _ = try channel.pipeline.syncOperations.handler(type: SSEHandler.self)
        _ = try channel.finish()
    }

    @Test func webSocketReadsAndWritesThroughTheHandlerInFrontOfHTTP() throws {
        let (channel, loop) = try Self.connection(
            sending:
                "GET /api/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        let upgrade = try Self.written(channel)
        #expect(upgrade.first?.hasPrefix("<HTTP/1.1 101 Switching Protocols\r\n") == true, "\(upgrade)")
        #expect(upgrade.count == 2, "the 101 and the connected message")
        #expect(upgrade.allSatisfy { $0.hasPrefix("<") && $0.hasSuffix(">") }, "\(upgrade)")
        // A client frame passes the front handler, then the frame decoder, then the WebSocket handler.
        try channel.writeInbound(
            ByteBuffer(
                bytes: RawConnection.clientFrame(
                    opcode: 0x1, payload: Array(#"{"type":"subscribe","topics":["a"]}"#.utf8))
            ))
        loop.run()
        let reply = try #require(try Self.written(channel).first)
        #expect(reply.hasPrefix("<") && reply.hasSuffix(">"))
        #expect(reply.contains(#""type":"ack""#), "\(reply)")
        _ = try channel.finish()
    }
}
