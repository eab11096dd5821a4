import EventBroker
import Testing

@Suite struct AccessTokenTests {
    private func token(publish: [String] = [], subscribe: [String] = []) throws -> AccessToken {
        AccessToken(
            subject: "test",
            publishSelectors: try publish.map { try TopicSelector($0) },
            subscribeSelectors: try subscribe.map { try TopicSelector($0) }
        )
    }

    @Test func mayPublishToTopicsAPublishSelectorMatches() throws {
        let token = try self.token(publish: ["orders/eu/*", "audit"], subscribe: ["**"])
        #expect(token.mayPublish(to: try TopicName("orders/eu/42")))
        #expect(token.mayPublish(to: try TopicName("audit")))
        #expect(!token.mayPublish(to: try TopicName("orders/eu")))
        #expect(!token.mayPublish(to: try TopicName("orders/eu/42/lines")))
        #expect(!token.mayPublish(to: try TopicName("orders/us/42")))
        #expect(!token.mayPublish(to: try TopicName("audit/x")))
    }

    @Test func subscribeGrantsDoNotAllowPublishing() throws {
        let token = try self.token(subscribe: ["**"])
        #expect(!token.mayPublish(to: try TopicName("orders")))
    }

    @Test func doubleStarPublishGrantNeverMatchesReservedTopics() throws {
        let token = try self.token(publish: ["**"])
        #expect(token.mayPublish(to: try TopicName("anything/at/all")))
        #expect(!token.mayPublish(to: try TopicName("$broadcast")))
    }

    @Test func maySubscribeToSelectorsASubscribeSelectorCovers() throws {
        let token = try self.token(publish: ["**"], subscribe: ["orders/**", "chat/*", "$presence/chat"])
        #expect(token.maySubscribe(to: try TopicSelector("orders/eu/*")))
        #expect(token.maySubscribe(to: try TopicSelector("orders/**")))
        #expect(token.maySubscribe(to: try TopicSelector("chat/lobby")))
        #expect(token.maySubscribe(to: try TopicSelector("chat/*")))
        #expect(token.maySubscribe(to: try TopicSelector("$presence/chat")))
        #expect(!token.maySubscribe(to: try TopicSelector("orders")))
        #expect(!token.maySubscribe(to: try TopicSelector("chat/**")))
        #expect(!token.maySubscribe(to: try TopicSelector("**")))
        #expect(!token.maySubscribe(to: try TopicSelector("$presence/*")))
    }

    @Test func mayReadEventWhenASubscribeSelectorMatchesOneOfItsTopics() throws {
        let token = try self.token(subscribe: ["orders/**", "$broadcast"])
        #expect(token.mayRead([try TopicName("orders/eu/1")]))
        #expect(token.mayRead([try TopicName("billing/7"), try TopicName("orders/us/1")]))
        #expect(token.mayRead([TopicName.broadcast]))
        #expect(!token.mayRead([try TopicName("billing/7")]))
        #expect(!token.mayRead([try TopicName("orders")]))
        #expect(!token.mayRead([]))
    }

    @Test func tokenWithoutGrantsAllowsNothing() throws {
        let token = AccessToken()
        #expect(!token.mayPublish(to: try TopicName("a")))
        #expect(!token.maySubscribe(to: try TopicSelector("a")))
        #expect(!token.mayRead([try TopicName("a")]))
    }
}
