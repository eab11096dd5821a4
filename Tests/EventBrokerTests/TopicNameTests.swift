import EventBroker
import Testing

@Suite struct TopicNameTests {
    @Test func acceptsNamesOfOneTo256Bytes() throws {
        #expect(try TopicName("a").value == "a")
        let longest = String(repeating: "a", count: TopicName.maxLength)
        #expect(try TopicName(longest).value == longest)
        #expect(TopicName.maxLength == 256)
    }

    @Test func refusesNamesLongerThan256Bytes() {
        let tooLong = String(repeating: "a", count: TopicName.maxLength + 1)
        #expect(throws: BrokerError.self) { try TopicName(tooLong) }
        // Separators count towards the bound.
        let segmented = String(repeating: "a/", count: 128) + "a"  // 257 bytes
        #expect(throws: BrokerError.self) { try TopicName(segmented) }
    }

    @Test func refusesTheEmptyName() {
        #expect(throws: BrokerError.self) { try TopicName("") }
    }

    @Test func acceptsEveryAllowedCharacter() throws {
        let all = "ABCXYZabcxyz0123456789._-:/@$"
        #expect(try TopicName(all).value == all)
        for name in ["chat/lobby", "user@example.org", "orders:eu-west_1", "v1.2/x", "a$b", "$presence/room", "-", "."]
        {
            #expect(try TopicName(name).value == name, "\(name)")
        }
    }

    @Test(arguments: [
        "/chat", "chat/", "chat//lobby", "/", "//", "a/b/",
        "chat lobby", " chat", "chat ", "chat*", "*", "**", "chat/#", "#", "a+b", "a?b", "a,b", "a\\b",
        "caf\u{E9}", "\u{1F600}", "a\nb", "a\tb", "a\u{0}b", "ｃhat", "a%20b", "\"a\"",
    ])
    func refusesNamesOutsideTheCharsetOrWithEmptySegments(name: String) {
        #expect(throws: BrokerError.self) { try TopicName(name) }
    }

    @Test func refusalCarriesTheInvalidTopicCode() throws {
        let error = try #require(throws: BrokerError.self) { try TopicName("bad name") }
        #expect(error.code == .invalidTopic)
        #expect(error.code.description == "invalid_topic")
        #expect(error.message.contains("bad name"))
    }

    @Test func refusalMessageQuotesAtMost80CharactersOfTheName() throws {
        let name = String(repeating: "x", count: 300)
        let error = try #require(throws: BrokerError.self) { try TopicName(name) }
        #expect(error.message.contains(String(repeating: "x", count: 80)))
        #expect(!error.message.contains(String(repeating: "x", count: 81)))
    }

    @Test func namesBeginningWithDollarAreReserved() throws {
        #expect(try TopicName("$presence/chat").isReserved)
        #expect(try TopicName("$x").isReserved)
        #expect(TopicName.broadcast.isReserved)
        #expect(TopicName.broadcast.value == "$broadcast")
        #expect(try !TopicName("chat").isReserved)
        #expect(try !TopicName("a$").isReserved)
        #expect(try !TopicName("chat/$presence").isReserved)
    }

    @Test func ordersAndComparesByValue() throws {
        let a = try TopicName("a")
        let b = try TopicName("b")
        #expect(a < b)
        #expect(!(b < a))
        #expect(try TopicName("a") == a)
        #expect([b, a].sorted() == [a, b])
        #expect(Set([a, try TopicName("a"), b]).count == 2)
        #expect(a.description == "a")
    }
}
