import ArgumentParser
import BrokerJWT
import EventBroker
import Foundation

/// `broker-cli token`: prints an HS256 access token for a broker that verifies tokens with the same secret.
///
/// ```
/// broker-cli token --secret "$SECRET" --publish 'orders/eu/*' --subscribe 'orders/**' --ttl 1h --sub shop-eu
/// eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJicm9rZXIucHVibGlzaCI6WyJvcmRlcnMvZXUvKiJdLC….<signature>
///
/// payload: {"broker.publish":["orders/eu/*"],"broker.subscribe":["orders/**"],"exp":…,"iat":…,"sub":"shop-eu"}
/// ```
/// Every flag is checked before anything is signed; ``TokenIssuer`` does the signing.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an HS256 access token (JWT) for a broker that has the same secret.",
        discussion: """
            The token grants publishing to the topics its --publish selectors match and subscribing to the \
            selectors its --subscribe selectors cover, until --ttl from now. A selector is a topic name, or a \
            pattern where * stands for one segment and a final ** for one or more. The secret is visible to other \
            users in the process list while this runs; mint tokens on a machine you trust.

            Examples:
              broker-cli token --secret "$SECRET" --subscribe 'orders/**' --ttl 15m
              broker-cli token --secret "$SECRET" --publish 'orders/*' --sub shop --aud broker
            """
    )

    @Option(help: ArgumentHelp("The HS256 secret the broker verifies with: 32 bytes or more.", valueName: "secret"))
    var secret: String

    @Option(
        name: .customLong("publish"),
        help: ArgumentHelp("A selector of topics the bearer may publish to; repeat for several.", valueName: "selector")
    )
    var publishSelectors: [String] = []

    @Option(
        name: .customLong("subscribe"),
        help: ArgumentHelp("A selector the bearer may subscribe within; repeat for several.", valueName: "selector")
    )
    var subscribeSelectors: [String] = []

    @Option(
        help: ArgumentHelp("How long the token is valid, e.g. 90s, 15m, 1h, 7d; at least 1s.", valueName: "duration"))
    var ttl: String = "1h"

    @Option(
        name: .customLong("sub"),
        help: ArgumentHelp("The subject (sub claim) the token is issued to, for the broker's logs.", valueName: "name")
    )
    var subject: String?

    @Option(
        name: .customLong("aud"),
        help: ArgumentHelp("The audience (aud claim), for a broker that requires one.", valueName: "audience")
    )
    var audience: String?

    func validate() throws {
        _ = try self.issuer()
        _ = try self.accessToken(now: Date())
    }

    func run() async throws {
        let now = Date()
        let token = try await self.issuer().issue(self.accessToken(now: now), issuedAt: now)
        print(token)
    }

    private func issuer() throws -> TokenIssuer {
        do {
            return try TokenIssuer(secret: self.secret)
        } catch {
            throw ValidationError("--secret: \(error.message)")
        }
    }

    /// The claims the flags describe, expiring `--ttl` after `now`.
    func accessToken(now: Date) throws -> AccessToken {
        guard !self.publishSelectors.isEmpty || !self.subscribeSelectors.isEmpty else {
            throw ValidationError(
                "Give at least one --publish or --subscribe selector: a token that grants nothing is of no use.")
        }
        let ttl = try ServerOptions.duration(self.ttl, "--ttl")
        guard ttl >= .seconds(1) else { throw ValidationError("--ttl must be at least 1s.") }
        if let subject = self.subject, subject.isEmpty { throw ValidationError("--sub must not be empty.") }
        if let audience = self.audience, audience.isEmpty { throw ValidationError("--aud must not be empty.") }
        return AccessToken(
            subject: self.subject,
            expiresAt: now.addingTimeInterval(Double(ttl.components.seconds)),
            audience: self.audience.map { [$0] } ?? [],
            publishSelectors: try Self.selectors(self.publishSelectors, "--publish"),
            subscribeSelectors: try Self.selectors(self.subscribeSelectors, "--subscribe")
        )
    }

    private static func selectors(_ values: [String], _ flag: String) throws -> [TopicSelector] {
        var selectors: [TopicSelector] = []
        for value in values {
            do {
                selectors.append(try TopicSelector(value))
            } catch {
                throw ValidationError("\(flag): \(error.message)")
            }
        }
        return selectors
    }
}
