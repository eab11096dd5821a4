import Testing

@testable import EventBroker

@Suite struct SubscriptionRegistryTests {
    private static func client(_ topic: String, since: UInt64) throws -> SubscriptionRegistry.Client {
        SubscriptionRegistry.Client(
            shardIndex: 0, selectors: [try TopicSelector(topic)], transport: .sse, userID: nil, name: nil,
            sinceMilliseconds: since)
    }

    /// Clients that join within one millisecond are listed in the order they joined, not by their random ids.
    @Test func membersJoiningInTheSameMillisecondAreListedInJoinOrder() throws {
        var registry = SubscriptionRegistry(shardCount: 1)
        let ids = ["zzzzzzzzzzzzzzz", "mmmmmmmmmmmmmmm", "aaaaaaaaaaaaaaa"].map { ClientID(rawValue: $0) }
        for id in ids { registry.add(id, try Self.client("room", since: 1_000)) }
        registry.add(ClientID(rawValue: "000000000000000"), try Self.client("room", since: 1_001))
        let members = registry.members(of: try TopicName("room"), limit: 10).map(\.clientID.rawValue)
        #expect(members == ids.map(\.rawValue) + ["000000000000000"])
    }

    /// A client that changes its selectors keeps its place.
    @Test func readdingAClientWithItsJoinOrderKeepsItsPlace() throws {
        var registry = SubscriptionRegistry(shardCount: 1)
        let (first, second) = (ClientID(rawValue: "bbbbbbbbbbbbbbb"), ClientID(rawValue: "aaaaaaaaaaaaaaa"))
        registry.add(first, try Self.client("room", since: 1_000))
        registry.add(second, try Self.client("room", since: 1_000))
        var changed = try Self.client("room", since: 1_000)
        changed.joinOrder = registry.remove(first)!.joinOrder
        registry.add(first, changed)
        #expect(registry.members(of: try TopicName("room"), limit: 10).map(\.clientID) == [first, second])
    }
}
