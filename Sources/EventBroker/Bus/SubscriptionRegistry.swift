/// Who is subscribed to what, across every event loop: the bus's answer to "how many subscribers will get this",
/// to direct-message look-ups and to the topic listing. Not thread-safe: `Broker` owns it under its lock.
///
/// Delivery does not use it (each loop's `SubscriberShard` does); it only counts. Clients with a single selector,
/// the common case, are counted per selector so a publish costs one hash lookup plus one match per distinct
/// wildcard; clients with several selectors are checked one by one so none is counted twice.
struct SubscriptionRegistry {
    struct Client {
        let shardIndex: Int
        let selectors: [TopicSelector]
        let transport: Transport
        let userID: String?
        /// The display name presence shows: `?name=`, else the token's `sub`.
        let name: String?
        /// When it subscribed, in milliseconds since 1970.
        let sinceMilliseconds: UInt64
        /// Its place among the clients that subscribed in the same millisecond; 0 until `add` gives it one. A
        /// client re-added with new selectors passes its old one, and keeps its place.
        var joinOrder: UInt64 = 0

        /// The topics it is a member of for presence: those it names exactly, reserved ones aside. Long polls are
        /// never members: they come and go with each request.
        var presenceTopics: [TopicName] {
            guard self.transport != .longPoll else { return [] }
            var topics: [TopicName] = []
            for selector in self.selectors {
                if let topic = selector.exactTopic, !topic.isReserved, !topics.contains(topic) { topics.append(topic) }
            }
            return topics
        }
    }

    private(set) var clients: [ClientID: Client] = [:]
    /// The next `Client.joinOrder`.
    private var nextJoinOrder: UInt64 = 1
    /// Presence: the members of each topic (see `Client.presenceTopics`).
    private var members: [TopicName: Set<ClientID>] = [:]
    private var exactCounts: [TopicName: Int] = [:]
    private var wildcardCounts: [TopicSelector: Int] = [:]
    private var multiSelectorClients: Set<ClientID> = []
    private(set) var clientsPerShard: [Int]
    private(set) var countsByTransport: [Transport: Int] = [:]
    /// Selectors over all clients: what `/metrics` calls subscriptions.
    private(set) var selectorCount = 0

    init(shardCount: Int) {
        self.clientsPerShard = Array(repeating: 0, count: shardCount)
    }

    mutating func add(_ id: ClientID, _ client: Client) {
        var client = client
        if client.joinOrder == 0 {
            client.joinOrder = self.nextJoinOrder
            self.nextJoinOrder += 1
        }
        precondition(self.clients.updateValue(client, forKey: id) == nil, "client \(id) registered twice")
        self.clientsPerShard[client.shardIndex] += 1
        self.countsByTransport[client.transport, default: 0] += 1
        self.selectorCount += client.selectors.count
        if client.selectors.count == 1 {
            self.adjust(client.selectors[0], by: 1)
        } else {
            self.multiSelectorClients.insert(id)
        }
        for topic in client.presenceTopics { self.members[topic, default: []].insert(id) }
    }

    /// Removes a client; returns what it was registered with, or nil for an unknown id.
    @discardableResult
    mutating func remove(_ id: ClientID) -> Client? {
        guard let client = self.clients.removeValue(forKey: id) else { return nil }
        self.clientsPerShard[client.shardIndex] -= 1
        self.countsByTransport[client.transport, default: 1] -= 1
        self.selectorCount -= client.selectors.count
        if client.selectors.count == 1 {
            self.adjust(client.selectors[0], by: -1)
        } else {
            self.multiSelectorClients.remove(id)
        }
        for topic in client.presenceTopics {
            self.members[topic]?.remove(id)
            if self.members[topic]?.isEmpty == true { self.members[topic] = nil }
        }
        return client
    }

    /// How many clients are members of `topic` now.
    func memberCount(of topic: TopicName) -> Int { self.members[topic]?.count ?? 0 }

    /// The members of `topic`, earliest first (in join order within a millisecond), at most `limit` of them.
    func members(of topic: TopicName, limit: Int) -> [TopicMember] {
        guard let ids = self.members[topic] else { return [] }
        var list = ids.compactMap { id in
            self.clients[id].map {
                (
                    member: TopicMember(
                        clientID: id, name: $0.name, transport: $0.transport, sinceMilliseconds: $0.sinceMilliseconds),
                    sinceMilliseconds: $0.sinceMilliseconds, joinOrder: $0.joinOrder
                )
            }
        }
        list.sort { ($0.sinceMilliseconds, $0.joinOrder) < ($1.sinceMilliseconds, $1.joinOrder) }
        return Array(list.prefix(limit)).map(\.member)
    }

    private mutating func adjust(_ selector: TopicSelector, by delta: Int) {
        if let topic = selector.exactTopic {
            let count = self.exactCounts[topic, default: 0] + delta
            self.exactCounts[topic] = count == 0 ? nil : count
        } else {
            let count = self.wildcardCounts[selector, default: 0] + delta
            self.wildcardCounts[selector] = count == 0 ? nil : count
        }
    }

    /// Subscribers that an event on `topics` reaches (a broadcast reaches everyone).
    func subscriberCount(for topics: [TopicName]) -> Int {
        if topics.count == 1 {
            return topics[0] == .broadcast ? self.clients.count : self.subscriberCount(for: topics[0])
        }
        var count = 0
        for client in self.clients.values
        where topics.contains(where: { topic in client.selectors.contains(where: { $0.matches(topic) }) }) {
            count += 1
        }
        return count
    }

    /// Subscribers whose selectors match `topic`.
    func subscriberCount(for topic: TopicName) -> Int {
        var count = self.exactCounts[topic] ?? 0
        for (selector, selectorCount) in self.wildcardCounts where selector.matches(topic) {
            count += selectorCount
        }
        for id in self.multiSelectorClients
        where self.clients[id]!.selectors.contains(where: { $0.matches(topic) }) {
            count += 1
        }
        return count
    }

    /// Topics some client names exactly (wildcards name no topic).
    var exactlySubscribedTopics: Dictionary<TopicName, Int>.Keys { self.exactCounts.keys }

    func multiSelectorExactTopics() -> Set<TopicName> {
        var topics: Set<TopicName> = []
        for id in self.multiSelectorClients {
            for selector in self.clients[id]!.selectors { if let topic = selector.exactTopic { topics.insert(topic) } }
        }
        return topics
    }

    func clients(forUser userID: String) -> [(ClientID, Client)] {
        self.clients.filter { $0.value.userID == userID && $0.value.transport != .longPoll }.map { ($0.key, $0.value) }
    }
}
