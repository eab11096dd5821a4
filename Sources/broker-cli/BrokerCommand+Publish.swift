import ArgumentParser
import BrokerClient
import Foundation

/// `broker-cli publish`: sends one event to a running broker's `POST /api/events/publish` and prints its answer.
///
/// ```
/// POST /api/events/publish           {"topics":["orders"],"data":"hello","event":"greeting"}
/// 200 {"id":"…","topics":["orders"],"subscribers":2}     → printed, exit 0
/// 4xx {"error":{"code":"…","message":"…"}}               → message on stderr, exit 1
/// ```
struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish one event to a running broker.",
        discussion: """
            Sends POST <url>/api/events/publish and prints the broker's JSON answer. When the broker refuses, \
            prints its error message to standard error and exits with code 1.

            Examples:
              broker-cli publish --topic orders --data 'hello'
              broker-cli publish --topic orders --event created --json --data '{"id":42}'
              echo '{"id":42}' | broker-cli publish --topic orders --json --data -
            """
    )

    @Option(name: .customLong("topic"), help: "A topic to publish to; repeat it for several topics.")
    var topics: [String]

    @Option(help: "The event's data; '-' reads it from standard input (one trailing newline removed).")
    var data: String

    @Option(help: "The event type, sent to subscribers as the SSE 'event:' field.")
    var event: String?

    @Flag(help: "Parse --data as JSON and send it as a JSON value instead of a string.")
    var json = false

    @Option(help: "Sent as the Idempotency-Key header, so a retried publish is delivered only once.")
    var idempotencyKey: String?

    @Option(help: "The broker's base URL (default: $BROKER_URL, else \(BrokerURL.defaultString)).")
    var url: String?

    @Option(help: "An access token, sent as 'Authorization: Bearer' (default: $BROKER_TOKEN; see 'broker-cli token').")
    var token: String?

    @Option(help: "Seconds to wait for the broker's answer.")
    var timeout: Int = 30

    func validate() throws {
        guard !self.topics.isEmpty else {
            throw ValidationError("Give at least one --topic.")
        }
        guard self.timeout > 0 else {
            throw ValidationError("--timeout must be a positive number of seconds.")
        }
        _ = try Self.brokerURL(self.url)
        if self.json, self.data != "-" {
            try Self.validateJSON(self.data)
        }
    }

    func run() async throws {
        let baseURL = try Self.brokerURL(self.url)
        let data: String
        if self.data == "-" {
            data = Self.readStandardInput()
            if self.json {
                try Self.validateJSON(data)
            }
        } else {
            data = self.data
        }
        let body = try Self.makeBody(topics: self.topics, data: data, isJSON: self.json, event: self.event)

        var headers = [("Content-Type", "application/json"), ("Accept", "application/json")]
        if let idempotencyKey = self.idempotencyKey {
            headers.append(("Idempotency-Key", idempotencyKey))
        }
        headers += Self.authorization(self.token)
        let response: (status: Int, headers: [(String, String)], body: String)
        do {
            response = try await BrokerHTTPClient.request(
                method: "POST",
                url: baseURL.appendingPath("/api/events/publish"),
                headers: headers,
                body: body,
                timeout: .seconds(self.timeout)
            )
        } catch {
            Self.printError("error: publishing to \(baseURL) failed: \(error)")
            throw ExitCode(1)
        }
        guard (200..<300).contains(response.status) else {
            Self.printError("error: " + Self.describeErrorAnswer(status: response.status, body: response.body))
            throw ExitCode(1)
        }
        print(response.body.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// `Authorization: Bearer` with `token`, else with `$BROKER_TOKEN`; nothing when neither is set.
    static func authorization(_ token: String?) -> [(String, String)] {
        guard let token = token ?? ProcessInfo.processInfo.environment["BROKER_TOKEN"], !token.isEmpty else {
            return []
        }
        return [("Authorization", "Bearer \(token)")]
    }

    /// The request body: `{"topics":[…],"data":…,"event":…}`. With `isJSON`, `data` (already validated) is
    /// inserted as it is, so numbers and key order reach the broker unchanged; otherwise it is a JSON string.
    static func makeBody(topics: [String], data: String, isJSON: Bool, event: String?) throws -> String {
        var body = "{\"topics\":" + (try Self.encode(topics))
        body += ",\"data\":" + (isJSON ? data.trimmingCharacters(in: .whitespacesAndNewlines) : try Self.encode(data))
        if let event {
            body += ",\"event\":" + (try Self.encode(event))
        }
        return body + "}"
    }

    /// `value` (a string or an array of strings) as compact JSON.
    private static func encode(_ value: Any) throws -> String {
        let data = try JSONSerialization.data(
            withJSONObject: value,
            options: [.fragmentsAllowed, .withoutEscapingSlashes]
        )
        return String(decoding: data, as: UTF8.self)
    }

    private static func validateJSON(_ text: String) throws {
        do {
            _ = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        } catch {
            throw ValidationError(
                "--data is not valid JSON (\(text.prefix(60))); drop --json to send it as a string."
            )
        }
    }

    /// The broker's base URL: `--url`, else `$BROKER_URL`, else the default.
    static func brokerURL(_ flag: String?) throws -> BrokerURL {
        let environment = ProcessInfo.processInfo.environment[BrokerURL.environmentVariable]
        let text = flag ?? environment.flatMap { $0.isEmpty ? nil : $0 } ?? BrokerURL.defaultString
        do {
            return try BrokerURL(text)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// `message (code, HTTP status)` from the broker's `{"error":{"code":…,"message":…}}`, or the status and
    /// the raw body when the answer is not one.
    static func describeErrorAnswer(status: Int, body: String) -> String {
        if let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
            let error = object["error"] as? [String: Any], let message = error["message"] as? String
        {
            let code = error["code"] as? String
            return "\(message) (\(code.map { "\($0), " } ?? "")HTTP \(status))"
        }
        let text = body.trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty
            ? "the broker answered HTTP \(status)" : "the broker answered HTTP \(status): \(text.prefix(500))"
    }

    static func printError(_ line: String) {
        try? FileHandle.standardError.write(contentsOf: Data((line + "\n").utf8))
    }

    private static func readStandardInput() -> String {
        var bytes = FileHandle.standardInput.readDataToEndOfFile()[...]
        if bytes.last == UInt8(ascii: "\n") {
            bytes = bytes.dropLast()
            if bytes.last == UInt8(ascii: "\r") {
                bytes = bytes.dropLast()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
