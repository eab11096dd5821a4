import BrokerJWT
import EventBroker
import Foundation
import Testing

/// The real `broker-cli token` process, its token checked by ``TokenVerifier`` with the same secret.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct TokenCommandTests {
    static let secret = "cli-test-secret-0123456789abcdefghij"

    @Test func printsHS256TokenThatTheVerifierAcceptsWithTheSameSecret() async throws {
        let before = Date()
        let result = try CLITests.run([
            "token", "--secret", Self.secret, "--publish", "orders/eu/*", "--publish", "audit",
            "--subscribe", "orders/**", "--ttl", "1h", "--sub", "shop-eu", "--aud", "broker",
        ])
        #expect(result.status == 0, "\(result.errors)")
        let lines = result.output.split(separator: "\n")
        #expect(lines.count == 1)
        let token = String(try #require(lines.first))

        let verifier = try await TokenVerifier(
            configuration: TokenVerifierConfiguration(hmacSecret: Self.secret, audience: "broker"))
        let access = try verifier.verify(token, now: Date())
        #expect(access.subject == "shop-eu")
        #expect(access.audience == ["broker"])
        #expect(access.publishSelectors == [try TopicSelector("orders/eu/*"), try TopicSelector("audit")])
        #expect(access.subscribeSelectors == [try TopicSelector("orders/**")])
        let expiresAt = try #require(access.expiresAt)
        #expect(expiresAt >= before.addingTimeInterval(3600 - 1))
        #expect(expiresAt <= Date().addingTimeInterval(3600))

        let otherVerifier = try await TokenVerifier(
            configuration: TokenVerifierConfiguration(hmacSecret: Self.secret + "-other"))
        #expect(throws: AuthorizationError.self) { try otherVerifier.verify(token, now: Date()) }
    }

    @Test func tokenExpiresAfterItsTTL() async throws {
        let result = try CLITests.run(["token", "--secret", Self.secret, "--subscribe", "news", "--ttl", "90s"])
        #expect(result.status == 0, "\(result.errors)")
        let token = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let verifier = try await TokenVerifier(
            configuration: TokenVerifierConfiguration(hmacSecret: Self.secret, clockSkewLeeway: .zero))
        let access = try verifier.verify(token, now: Date())
        #expect(access.publishSelectors.isEmpty)
        let error = #expect(throws: AuthorizationError.self) {
            try verifier.verify(token, now: Date().addingTimeInterval(91))
        }
        #expect(error?.code == .tokenExpired)
    }

    @Test(arguments: [
        (["--secret", "short", "--subscribe", "a"], "--secret: The HS256 secret has 5 bytes; use at least 32."),
        (["--secret", TokenCommandTests.secret], "Give at least one --publish or --subscribe selector"),
        (["--secret", TokenCommandTests.secret, "--publish", "a/**/b"], "--publish: Invalid topic selector 'a/**/b'"),
        (["--secret", TokenCommandTests.secret, "--subscribe", "a//b"], "--subscribe: Invalid topic selector 'a//b'"),
        (
            ["--secret", TokenCommandTests.secret, "--subscribe", "a", "--ttl", "soon"],
            "--ttl: 'soon' is not a duration"
        ),
        (["--secret", TokenCommandTests.secret, "--subscribe", "a", "--ttl", "500ms"], "--ttl must be at least 1s."),
        (["--secret", TokenCommandTests.secret, "--subscribe", "a", "--sub", ""], "--sub must not be empty."),
        (["--secret", TokenCommandTests.secret, "--subscribe", "a", "--aud", ""], "--aud must not be empty."),
    ])
    func refusesInvalidInputWithAClearMessage(arguments: [String], message: String) throws {
        let result = try CLITests.run(["token"] + arguments)
        #expect(result.status != 0)
        #expect(result.output.isEmpty)
        #expect(result.errors.contains(message), "\(result.errors)")
    }
}
