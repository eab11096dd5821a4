import EventBroker
import Testing

@Suite struct TopicSelectorTests {
    private func matches(_ selector: String, _ topic: String) throws -> Bool {
        try TopicSelector(selector).matches(TopicName(topic))
    }

    @Test func exactSelectorMatchesOnlyItsTopic() throws {
        let selector = try TopicSelector("chat/lobby")
        #expect(!selector.isWildcard)
        #expect(selector.exactTopic == (try TopicName("chat/lobby")))
        #expect(selector.description == "chat/lobby")
        #expect(try selector.matches(TopicName("chat/lobby")))
        #expect(try !selector.matches(TopicName("chat/lobby2")))
        #expect(try !selector.matches(TopicName("chat")))
        #expect(try !selector.matches(TopicName("chat/lobby/x")))
    }

    @Test func selectorFromTopicIsExact() throws {
        let topic = try TopicName("$presence/chat")
        let selector = TopicSelector(topic: topic)
        #expect(selector.exactTopic == topic)
        #expect(selector == (try TopicSelector("$presence/chat")))
        #expect(selector.matches(topic))
    }

    @Test func exactSelectorMatchesReservedTopics() throws {
        #expect(try self.matches("$broadcast", "$broadcast"))
        #expect(try self.matches("$presence/chat", "$presence/chat"))
    }

    @Test func starMatchesExactlyOneSegment() throws {
        let selector = try TopicSelector("chat/*")
        #expect(selector.isWildcard)
        #expect(selector.exactTopic == nil)
        #expect(try self.matches("chat/*", "chat/a"))
        #expect(try self.matches("chat/*", "chat/lobby"))
        #expect(try !self.matches("chat/*", "chat"))
        #expect(try !self.matches("chat/*", "chat/a/b"))
        #expect(try !self.matches("chat/*", "chatroom/a"))
        #expect(try !self.matches("chat/*", "news/a"))
    }

    @Test func starCanStandForAnyPosition() throws {
        #expect(try self.matches("*/lobby", "chat/lobby"))
        #expect(try !self.matches("*/lobby", "chat/lobby2"))
        #expect(try self.matches("a/*/c", "a/b/c"))
        #expect(try !self.matches("a/*/c", "a/c"))
        #expect(try !self.matches("a/*/c", "a/b/b/c"))
        #expect(try self.matches("*/*", "x/y"))
        #expect(try !self.matches("*/*", "x"))
        #expect(try self.matches("*", "x"))
        #expect(try !self.matches("*", "x/y"))
    }

    @Test func finalDoubleStarMatchesOneOrMoreSegments() throws {
        #expect(try self.matches("chat/**", "chat/a"))
        #expect(try self.matches("chat/**", "chat/a/b"))
        #expect(try self.matches("chat/**", "chat/a/b/c/d"))
        #expect(try !self.matches("chat/**", "chat"))
        #expect(try !self.matches("chat/**", "chatroom/a"))
        #expect(try !self.matches("chat/**", "news/a"))
        #expect(try self.matches("*/**", "a/b/c"))
        #expect(try !self.matches("*/**", "a"))
    }

    @Test func doubleStarAloneMatchesEveryUnreservedTopicAndNoReservedOne() throws {
        for topic in ["a", "a/b", "a/b/c", "x:y@z", "a/$b"] {
            #expect(try self.matches("**", topic), "\(topic)")
        }
        for topic in ["$broadcast", "$presence/chat", "$x/y/z"] {
            #expect(try !self.matches("**", topic), "\(topic)")
        }
    }

    @Test func leadingWildcardNeverMatchesReservedTopicButLeadingLiteralDoes() throws {
        #expect(try !self.matches("*/x", "$presence/x"))
        #expect(try !self.matches("*", "$broadcast"))
        #expect(try !self.matches("*/**", "$presence/x"))
        #expect(try self.matches("$presence/*", "$presence/x"))
        #expect(try self.matches("$presence/**", "$presence/x/y"))
        #expect(try !self.matches("$presence/*", "$presence"))
        #expect(try !self.matches("$presence/*", "presence/x"))
    }

    @Test(arguments: [
        "a/**/b", "**/a", "a*", "*a", "**x", "x**", "***", "", "a//b", "/a", "a/", "/*", "*/", "a/*/",
        "a b", "a/#", "caf\u{E9}/*", "*/\u{1F600}",
    ])
    func refusesInvalidPatterns(pattern: String) throws {
        let error = try #require(throws: BrokerError.self) { try TopicSelector(pattern) }
        #expect(error.code == .invalidSelector)
    }

    @Test func refusesPatternsLongerThan256Bytes() throws {
        let atLimit = String(repeating: "a/", count: 127) + "**"  // 256 bytes
        #expect(try TopicSelector(atLimit).isWildcard)
        let tooLong = "a" + atLimit
        let error = try #require(throws: BrokerError.self) { try TopicSelector(tooLong) }
        #expect(error.code == .invalidSelector)
    }

    @Test func equalPatternsAreEqualAndHashAlike() throws {
        let a = try TopicSelector("chat/*")
        let b = try TopicSelector("chat/*")
        #expect(a == b)
        #expect(Set([a, b, try TopicSelector("chat/**")]).count == 2)
        #expect(a.description == "chat/*")
    }

    static let table: [(selector: String, topic: String, expected: Bool)] = [
        ("chat", "chat", true),
        ("chat", "chat/a", false),
        ("chat/a", "chat/a", true),
        ("chat/a", "chat/ab", false),
        ("chat/ab", "chat/a", false),
        ("chat/*", "chat/a", true),
        ("chat/*", "chat", false),
        ("chat/*", "chat/a/b", false),
        ("chat/**", "chat/a", true),
        ("chat/**", "chat/a/b", true),
        ("chat/**", "chat", false),
        ("*/b", "a/b", true),
        ("*/b", "a/c", false),
        ("*/b/*", "a/b/c", true),
        ("*/b/*", "a/b", false),
        ("a/*/c/**", "a/x/c/d/e", true),
        ("a/*/c/**", "a/x/c", false),
        ("**", "a", true),
        ("**", "a/b/c", true),
        ("**", "$broadcast", false),
        ("*", "$broadcast", false),
        ("*/x", "$presence/x", false),
        ("$presence/*", "$presence/x", true),
        ("$presence/*", "$presence/x/y", false),
        ("$presence/**", "$presence/x/y", true),
        ("$broadcast", "$broadcast", true),
        ("a/**", "a/$b", true),
    ]

    @Test(arguments: Self.table)
    func selectorTable(selector: String, topic: String, expected: Bool) throws {
        #expect(try self.matches(selector, topic) == expected)
    }
}
