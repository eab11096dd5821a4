import Testing

@testable import HTTPServer

/// The request target's path and query, read where they are asked for.
@Suite struct RequestTargetTests {
    @Test func splitsThePathFromTheQueryAndDropsTheFragment() {
        let target = RequestTarget(uri: "/api/events/history?topic=a&limit=5#top")
        #expect(target.path == "/api/events/history")
        #expect(target.query.map { "\($0.name)=\($0.value)" } == ["topic=a", "limit=5"])
        #expect(RequestTarget(uri: "/api/health#x?topic=a").query.isEmpty)
        #expect(RequestTarget(uri: "/api/health#x?topic=a").path == "/api/health")
        #expect(RequestTarget(uri: "/api/health?").query.isEmpty)
    }

    @Test func decodesEscapesInThePathButNotPlus() {
        #expect(RequestTarget(uri: "/api/topics/a%2Fb+c?x=1").path == "/api/topics/a/b+c")
        #expect(RequestTarget(uri: "/api/topics/%zz%4").path == "/api/topics/%zz%4")
    }

    @Test func decodesQueryValuesWithPlusAsASpaceAndKeepsMalformedEscapes() {
        let target = RequestTarget(uri: "/p?name=Ada+L%C3%B6ve&raw=100%&bad=%g1")
        #expect(target.first("name") == "Ada L\u{F6}ve")
        #expect(target.first("raw") == "100%")
        #expect(target.first("bad") == "%g1")
    }

    @Test func keepsRepeatedNamesInOrderAndSkipsEmptyPairs() {
        let target = RequestTarget(uri: "/p?topic=a&&topic=b&flag&topic=&topic=c")
        #expect(target.values("topic") == ["a", "b", "", "c"])
        #expect(target.contains("flag"))
        #expect(target.first("flag") == "")
        #expect(target.query.count == 5)
    }

    @Test func matchesNamesByTheirDecodedBytes() {
        let target = RequestTarget(uri: "/p?%74opic=a&last+id=7")
        #expect(target.contains("topic"))
        #expect(target.values("topic") == ["a"])
        #expect(target.first("last id") == "7")
        #expect(!target.contains("topics"))
        #expect(!target.contains("Topic"))
    }

    @Test func containsAndFirstTakeSeveralNames() {
        let target = RequestTarget(uri: "/p?last_event_id=4&lastEventId=9")
        #expect(target.contains("nothing", or: "lastEventId"))
        #expect(target.contains("lastEventId", or: "nothing"))
        #expect(!target.contains("nothing", or: "else"))
        // The first of `names` that is given wins, whatever the order of the query.
        #expect(target.first("lastEventId", "last_event_id") == "9")
        #expect(target.first("missing", "last_event_id") == "4")
    }

    @Test(arguments: [
        ("/p?topic=a&&topic=b&flag&topic=&topic=c", ["topic=a", "topic=b", "flag=", "topic=", "topic=c"]),
        ("/p?", []), ("/p", []), ("/p?&", []),
        ("/p?=x&a=b=c&%74opic=1&last+id=7#f", ["=x", "a=b=c", "topic=1", "last id=7"]),
        ("/p?a=%zz&b=%4&c=%C3%B6", ["a=%zz", "b=%4", "c=\u{F6}"]),
    ])
    func splitsTheQueryIntoPairsOnItsBytes(_ uri: String, _ expected: [String]) {
        let target = RequestTarget(uri: uri)
        #expect(target.query.map { "\($0.name)=\($0.value)" } == expected)
        var raw: [String] = []
        target.forEachParameterBytes { name, value in
            raw.append("\(RequestTarget.decodeForm(bytes: name))=\(RequestTarget.decodeForm(bytes: value))")
        }
        #expect(raw == expected)
    }

    @Test func parsesAFormBodyUpToAFragment() {
        let pairs = RequestTarget.parseForm("topic=a&data=hello+world%21#ignored&x=1")
        #expect(pairs.map(\.name) == ["topic", "data"])
        #expect(pairs.map(\.value) == ["a", "hello world!"])
    }
}
