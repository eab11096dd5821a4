import EventBroker
import Logging
import NIOCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What the fuzz targets in `Sources/broker-fuzz` reach of this module, and nothing else should call.
///
/// The parsers and the pipeline set-up are internal. `@testable import` would reach them too, but only in a build
/// with `-enable-testing`, which release and sanitized builds are not; these thin public shims work in any build.
/// Each decoder takes raw bytes, runs the real code on them, and checks properties that hold for every input (a
/// decoded JSON value or error reply is valid JSON that reads back the same): a violation stops the process with
/// `preconditionFailure`, which is what a fuzzer reports as a crash.
public enum FuzzEntryPoints {
    /// The content types a publish body is decoded with: none, each supported form, parameters and case, and two
    /// that are refused.
    static let contentTypes: [String?] = [
        nil, "application/json", "Application/JSON; charset=utf-8", "application/cloudevents+json",
        "application/x-www-form-urlencoded", "text/plain", "application/octet-stream", "multipart/form-data", "",
    ]

    /// Decodes `RequestTarget(uri:)` from `bytes` as text (invalid UTF-8 repaired to U+FFFD, as the HTTP parser's
    /// `String` would be), routes its path, and parses the text as a form body too.
    public static func requestTarget(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let target = RequestTarget(uri: text)
        for (name, value) in target.query {
            precondition(target.contains(name), "query name '\(name)' not found by contains")
            precondition(target.values(name).contains(value), "query value of '\(name)' not found by values")
            precondition(target.first(name) != nil, "query name '\(name)' not found by first")
        }
        if !text.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") })
        {
            precondition(target.path == Substring(text), "a path without escapes or query changed when decoded")
        }
        _ = Router.match(path: target.path)
        _ = RequestTarget.parseForm(Substring(text))
    }

    /// Decodes a publish, broadcast and direct-message body from `bytes`: the text up to the first newline is the
    /// request target (`/api/events/publish?topic=a`), the rest the body, tried with every type of `contentTypes`.
    public static func publishBody(_ bytes: [UInt8]) {
        let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
        let target = RequestTarget(uri: String(decoding: bytes[..<newline], as: UTF8.self))
        let body = ByteBuffer(bytes: newline == bytes.endIndex ? [] : bytes[(newline + 1)...])
        for kind in [PublishBody.Kind.publish, .broadcast, .message] {
            for contentType in Self.contentTypes {
                do {
                    let fields = try PublishBody.decode(
                        kind: kind, contentType: contentType, target: target, body: body)
                    if fields.dataIsJSON, let data = fields.data {
                        Self.checkRoundTrip(data, "publish data")
                    }
                    if let retry = fields.retry {
                        precondition(retry >= 0 && retry <= PublishBody.maxRetryMilliseconds, "retry out of range")
                    }
                } catch {
                    Self.checkRoundTrip(error.jsonBody, "error body")
                }
            }
        }
    }

    /// Parses `bytes` as the requests of one connection twice, fed whole and fed as `pieces`, and checks that both
    /// give the same parts (bodies compared as bytes) and stop with the same kind of error (its text may differ: a
    /// whole line can be refused for another reason than its first piece): where a read ends must never change what
    /// a request is.
    public static func httpRequests(_ bytes: [UInt8], pieces: [ArraySlice<UInt8>]) {
        let limits = HTTPRequestParser.Limits(maxRequestLineBytes: 1024, maxHeaderBytes: 1024, maxHeaderCount: 16)
        let whole = Self.parseRequests([bytes[...]], limits: limits)
        let split = Self.parseRequests(pieces, limits: limits)
        guard whole == split else {
            preconditionFailure("split input parsed differently:\n\(whole)\n\(split)")
        }
    }

    /// The parts `pieces` parse into, as text, then the error that stopped the parser, if any.
    private static func parseRequests(_ pieces: [ArraySlice<UInt8>], limits: HTTPRequestParser.Limits) -> [String] {
        var parser = HTTPRequestParser(limits: limits)
        var buffer = ByteBuffer()
        var parts: [String] = []
        var body: [UInt8] = []
        for piece in pieces {
            buffer.writeBytes(piece)
            do throws(HTTPRequestParser.ParseError) {
                while true {
                    var next = parser.pendingEnd()
                    if next == nil { next = try parser.next(&buffer) }
                    guard let part = next else { break }
                    switch part {
                    case .head(let head):
                        parts.append("\(head.method) \(head.uri) \(head.version) \(Array(head.headers))")
                    case .body(let chunk):
                        body += chunk.readableBytesView
                    case .end:
                        parts.append("body \(body)")
                        body = []
                        parts.append("end")
                    }
                }
            } catch {
                switch error {
                case .headTooLarge: parts.append("error: head too large")
                case .invalid: parts.append("error: invalid")
                }
                return parts
            }
        }
        return parts
    }

    /// Decodes one WebSocket text message from `bytes` when they are UTF-8 (the frame decoder refuses other text
    /// with 1007), and builds the reply the handler would send to it.
    public static func webSocketMessage(_ bytes: [UInt8]) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return }
        let message = WebSocketMessage.decode(text)
        let reply: String
        switch message.request {
        case .failure(let error):
            reply = WebSocketReply.error(error, ref: message.ref)
        case .success(.ping):
            reply = WebSocketReply.pong(ref: message.ref)
        case .success(.subscribe(let selectors, _)), .success(.unsubscribe(let selectors)):
            precondition(!selectors.isEmpty, "a subscription without selectors was accepted")
            reply = WebSocketReply.ack(ref: message.ref, topics: selectors)
        case .success(.publish(let fields)):
            if fields.dataIsJSON, let data = fields.data { Self.checkRoundTrip(data, "publish data") }
            reply = WebSocketReply.ack(ref: message.ref, id: EventID(rawValue: 1_763_780_248_000_001))
        }
        Self.checkRoundTrip(reply, "reply")
    }

    /// `json` must parse, and serialize to the same value that parses the same again.
    private static func checkRoundTrip(_ json: String, _ what: String) {
        let value: JSONValue
        do {
            value = try JSONParser.parse(json.utf8)
        } catch {
            preconditionFailure("\(what) is not valid JSON (\(error)): \(json)")
        }
        let again: JSONValue
        do {
            again = try JSONParser.parse(value.serialized().utf8)
        } catch {
            preconditionFailure("\(what) does not read back after serializing (\(error)): \(value.serialized())")
        }
        precondition(again == value, "\(what) changed on a round trip: \(json) → \(value.serialized())")
    }

    /// A verifier for fuzzing the authorization paths without cryptography: the token is its own claims.
    ///
    /// ```
    /// all                       publish and subscribe everything, `$broadcast` and `$direct` included; sub "fuzz"
    /// news                      subscribe news/** only
    /// grant:P1,P2:S1,S2         publish selectors P…, subscribe selectors S… (either list may be empty)
    /// expired                   token_expired
    /// anything else             malformed_token (or invalid_claim for a grant with an invalid selector)
    /// ```
    public struct FuzzTokenVerifier: AccessTokenVerifying {
        public init() {}

        public func verify(_ token: String, now: Date) throws(AuthorizationError) -> AccessToken {
            switch token {
            case "all":
                return AccessToken(
                    subject: "fuzz", expiresAt: now.addingTimeInterval(60),
                    publishSelectors: Self.selectors("**,$broadcast,$direct"),
                    subscribeSelectors: Self.selectors("**,$broadcast"))
            case "news":
                return AccessToken(subscribeSelectors: Self.selectors("news/**,news"))
            case "expired":
                throw AuthorizationError(.tokenExpired, "The token expired.")
            default:
                let parts = token.split(separator: ":", omittingEmptySubsequences: false)
                guard parts.count == 3, parts[0] == "grant" else {
                    throw AuthorizationError(.malformedToken, "Not a fuzz token.")
                }
                var publish: [TopicSelector] = []
                var subscribe: [TopicSelector] = []
                do {
                    for name in parts[1].split(separator: ",") { publish.append(try TopicSelector(String(name))) }
                    for name in parts[2].split(separator: ",") { subscribe.append(try TopicSelector(String(name))) }
                } catch {
                    throw AuthorizationError(.invalidClaim, "A selector is invalid.")
                }
                return AccessToken(publishSelectors: publish, subscribeSelectors: subscribe)
            }
        }

        private static func selectors(_ list: String) -> [TopicSelector] {
            list.split(separator: ",").compactMap { try? TopicSelector(String($0)) }
        }
    }

    /// One server's shared state (a REST API over its own `Broker`, connection limits, compressors and metrics),
    /// and the pipeline set-up `BrokerServer` gives each accepted connection: the fuzzers put it on
    /// `EmbeddedChannel`s.
    ///
    /// The limits are small, so one short input can reach them: a 4 KiB body, a 2 KiB head, a 2 KiB WebSocket
    /// message, 5 publishes at once, and one allowed CORS origin (`https://allowed.example`).
    public final class Connections {
        public let broker: Broker
        let configuration: BrokerConfiguration
        let api: RESTAPI
        let limits: ServerLimits
        let compression: WebSocketCompression
        let metrics: ServerMetrics
        let logger: Logger

        /// - Parameters:
        ///   - eventLoop: The loop of every channel set up here.
        ///   - clock: The bus's wall clock.
        ///   - authorizing: Whether tokens are required, as ``FuzzTokenVerifier`` reads them (anonymous clients may
        ///     subscribe, so that a WebSocket upgrade without a token still succeeds).
        public init(eventLoop: any EventLoop, clock: BrokerClock, authorizing: Bool = false) {
            self.logger = Logger(label: "broker-fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
            var configuration = BrokerConfiguration(
                maxBodyBytes: 4096, maxHeaderBytes: 2048, maxWebSocketMessageBytes: 2048, publishRate: 5,
                publishBurst: 5, slowConsumerBytes: 2048, corsAllowedOrigins: ["https://allowed.example"])
            configuration.bus.heartbeatInterval = .seconds(15)
            if authorizing {
                configuration.tokenVerifier = FuzzTokenVerifier()
                configuration.allowsAnonymousSubscribers = true
            }
            self.configuration = configuration
            self.metrics = ServerMetrics()
            self.broker = Broker(
                eventLoops: [eventLoop], configuration: configuration.bus, clock: clock,
                metrics: BusMetrics(factory: self.metrics.factory), logger: self.logger)
            self.api = RESTAPI(broker: self.broker, configuration: configuration, startedAt: .now)
            self.limits = ServerLimits(configuration)
            self.compression = WebSocketCompression(eventLoops: [eventLoop])
        }

        /// Adds the HTTP handlers to a new connection's pipeline, as `BrokerServer` does.
        public func configure(_ channel: any Channel) throws {
            try HTTPPipeline.configure(
                channel, api: self.api, configuration: self.configuration, limits: self.limits,
                webSocketCompression: self.compression, metrics: self.metrics, logger: self.logger)
        }

        /// Connections holding a slot of the connection limits: 0 once every channel set up here has closed.
        public var openConnections: Int { self.limits.connections.count }

        /// Subscribers the bus still counts, over every transport: 0 once every channel set up here has closed.
        public var subscribers: Int { self.broker.stats().connections.values.reduce(0, +) }
    }
}
