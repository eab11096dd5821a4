import EventBroker
import Testing

@Suite struct TopicSelectorCoveringTests {
    /// A granted selector, a requested one, and whether the grant covers the request.
    struct Case: Sendable, CustomTestStringConvertible {
        let granted: String
        let requested: String
        let covers: Bool

        init(_ granted: String, _ requested: String, _ covers: Bool) {
            self.granted = granted
            self.requested = requested
            self.covers = covers
        }

        var testDescription: String { "\(self.granted) \(self.covers ? "covers" : "does not cover") \(self.requested)" }
    }

    static let table: [Case] = [
        // An exact grant covers only its own topic.
        Case("orders", "orders", true),
        Case("orders", "orders/x", false),
        Case("orders/x", "orders/*", false),
        Case("orders/x", "orders/**", false),
        Case("$presence/chat", "$presence/chat", true),
        Case("$presence/chat", "$presence/*", false),
        // `*` stands for one segment.
        Case("orders/*", "orders/x", true),
        Case("orders/*", "orders/*", true),
        Case("orders/*", "orders", false),
        Case("orders/*", "orders/x/y", false),
        Case("orders/*", "orders/**", false),
        Case("orders/*", "orders/*/y", false),
        Case("orders/*", "billing/x", false),
        Case("orders/*", "*/x", false),
        Case("*/x", "orders/x", true),
        Case("*/x", "*/x", true),
        Case("*/x", "*/y", false),
        Case("*/*", "orders/*", true),
        Case("*/*", "*/x", true),
        Case("*/*", "*/**", false),
        Case("a/*/c", "a/b/c", true),
        Case("a/*/c", "a/*/c", true),
        Case("a/*/c", "a/*/*", false),
        Case("*", "orders", true),
        Case("*", "*", true),
        Case("*", "**", false),
        // A final `**` stands for one or more segments.
        Case("orders/**", "orders/x", true),
        Case("orders/**", "orders/x/y/z", true),
        Case("orders/**", "orders/*", true),
        Case("orders/**", "orders/eu/*", true),
        Case("orders/**", "orders/*/x", true),
        Case("orders/**", "orders/**", true),
        Case("orders/**", "orders/eu/**", true),
        Case("orders/**", "orders", false),
        Case("orders/**", "orders2/x", false),
        Case("orders/**", "*/x", false),
        Case("orders/**", "**", false),
        Case("orders/eu/**", "orders/**", false),
        Case("orders/eu/**", "orders/*/x", false),
        Case("*/**", "orders/x", true),
        Case("*/**", "orders/**", true),
        Case("*/**", "*/*", true),
        Case("*/**", "orders", false),
        Case("*/**", "*", false),
        Case("*/**", "**", false),
        Case("a/*/**", "a/b/c", true),
        Case("a/*/**", "a/*/c/**", true),
        Case("a/*/**", "a/b", false),
        // `**` alone covers every selector of non-reserved topics, and no reserved one.
        Case("**", "orders", true),
        Case("**", "orders/x/y", true),
        Case("**", "*", true),
        Case("**", "*/x", true),
        Case("**", "a/*/c", true),
        Case("**", "orders/**", true),
        Case("**", "**", true),
        Case("**", "a/$b", true),
        Case("**", "$broadcast", false),
        Case("**", "$presence/x", false),
        Case("**", "$presence/*", false),
        Case("**", "$presence/**", false),
        Case("*", "$broadcast", false),
        Case("*/**", "$presence/*", false),
        Case("*/x", "$presence/x", false),
        // Reserved topics are covered only by a grant that names their first segment.
        Case("$presence/*", "$presence/x", true),
        Case("$presence/*", "$presence/*", true),
        Case("$presence/*", "$presence/**", false),
        Case("$presence/**", "$presence/x/y", true),
        Case("$presence/**", "$presence/*", true),
        Case("$presence/**", "$presence/**", true),
        Case("$presence/**", "$presence", false),
        Case("$presence/**", "presence/x", false),
    ]

    @Test(arguments: Self.table)
    func coversExactlyTheSelectorsWhoseTopicsItMatches(_ entry: Case) throws {
        let granted = try TopicSelector(entry.granted)
        let requested = try TopicSelector(entry.requested)
        #expect(granted.covers(requested) == entry.covers)
    }

    @Test func everySelectorCoversItself() throws {
        for entry in Self.table {
            for text in [entry.granted, entry.requested] {
                let selector = try TopicSelector(text)
                #expect(selector.covers(selector), "\(text)")
            }
        }
    }

    /// Every selector of up to 3 segments over {a, $r, *, **}, checked against every topic of up to 4 segments over
    /// {a, c, $r}: `covers` must hold exactly when every sampled topic the request matches, the grant matches too.
    /// The sample has a segment no selector names (`c`) and one segment more than the longest selector, so a
    /// request that reaches beyond its grant always has a witness among the sampled topics.
    @Test func agreesWithMatchingOverEveryTopicOfASmallAlphabet() throws {
        let selectorSegments = ["a", "$r", "*"]
        var selectorTexts: [String] = []
        var prefixes = [""]
        for _ in 1...3 {
            var longer: [String] = []
            for prefix in prefixes {
                for segment in selectorSegments + ["**"] {
                    selectorTexts.append(prefix + segment)
                }
                for segment in selectorSegments {
                    longer.append(prefix + segment + "/")
                }
            }
            prefixes = longer
        }
        var topicTexts: [String] = []
        var topicPrefixes = [""]
        for _ in 1...4 {
            var longer: [String] = []
            for prefix in topicPrefixes {
                for segment in ["a", "c", "$r"] {
                    topicTexts.append(prefix + segment)
                    longer.append(prefix + segment + "/")
                }
            }
            topicPrefixes = longer
        }
        let selectors = try selectorTexts.map { try TopicSelector($0) }
        let topics = try topicTexts.map { try TopicName($0) }
        #expect(selectors.count == 52)
        #expect(topics.count == 120)
        let matched = selectors.map { selector in topics.filter { selector.matches($0) } }
        for (grantedIndex, granted) in selectors.enumerated() {
            let grantedTopics = Set(matched[grantedIndex])
            for (requestedIndex, requested) in selectors.enumerated() {
                let included = matched[requestedIndex].allSatisfy { grantedTopics.contains($0) }
                #expect(granted.covers(requested) == included, "\(granted) over \(requested)")
            }
        }
    }
}
