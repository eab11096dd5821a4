import BrokerClient
import Testing

@Suite struct BrokerURLTests {
    @Test func parsesHostPortPathAndQuery() throws {
        let url = try BrokerURL("http://broker.local:8080/prefix/api?x=1&y=a%20b")
        #expect(url.host == "broker.local")
        #expect(url.port == 8080)
        #expect(url.path == "/prefix/api")
        #expect(url.query == "x=1&y=a%20b")
        #expect(url.requestTarget == "/prefix/api?x=1&y=a%20b")
        #expect(url.hostHeader == "broker.local:8080")
        #expect(url.description == "http://broker.local:8080/prefix/api?x=1&y=a%20b")
    }

    @Test func defaultsToPort80AndRootPath() throws {
        let url = try BrokerURL("http://127.0.0.1")
        #expect(url == BrokerURL(host: "127.0.0.1", port: 80, path: "/", query: nil))
        #expect(url.requestTarget == "/")
        #expect(url.hostHeader == "127.0.0.1")
        #expect(url.description == "http://127.0.0.1/")
    }

    @Test func readsQueryWithoutPath() throws {
        let url = try BrokerURL("http://h:81?topic=a")
        #expect(url.path == "/")
        #expect(url.query == "topic=a")
    }

    @Test func treatsMissingSchemeAsHTTP() throws {
        #expect(try BrokerURL("localhost:9000") == BrokerURL(host: "localhost", port: 9000))
    }

    @Test func acceptsSchemeInAnyCaseAndSurroundingWhitespace() throws {
        #expect(try BrokerURL("  HTTP://Example.com:81/a \n") == BrokerURL(host: "Example.com", port: 81, path: "/a"))
    }

    @Test func dropsFragmentAndEmptyQuery() throws {
        #expect(try BrokerURL("http://h/p?#frag") == BrokerURL(host: "h", path: "/p"))
        #expect(try BrokerURL("http://h/p?q=1#frag").query == "q=1")
    }

    @Test func parsesBracketedIPv6Literal() throws {
        let url = try BrokerURL("http://[::1]:8080/x")
        #expect(url.host == "::1")
        #expect(url.port == 8080)
        #expect(url.hostHeader == "[::1]:8080")
        #expect(url.description == "http://[::1]:8080/x")
        #expect(try BrokerURL("http://[fe80::1]").port == 80)
    }

    @Test(arguments: [
        ("https://broker.local", "https is not supported"),
        ("ftp://broker.local", "unsupported scheme 'ftp'"),
        ("ws://broker.local", "unsupported scheme 'ws'"),
        ("http://", "the host is missing"),
        ("http://:8080", "the host is missing"),
        ("http://h:0", "the port '0'"),
        ("http://h:65536", "the port '65536'"),
        ("http://h:80a", "the port '80a'"),
        ("http://h:", "the port ''"),
        ("http://h:-1", "the port '-1'"),
        ("http://user:pw@h", "credentials"),
        ("http://a b", "whitespace"),
        ("not a url", "whitespace"),
        ("", "the host is missing"),
        ("http://h!st/", "is not a host name"),
        ("http://[::1", "no closing ']'"),
        ("http://[::1]x", "unexpected 'x'"),
        ("http://[nope]", "is not an IPv6 address"),
        ("http://::1/", "must be in brackets"),
    ])
    func rejectsWhatIsNotAnHTTPURL(_ text: String, _ reason: String) {
        #expect {
            try BrokerURL(text)
        } throws: { error in
            guard let error = error as? BrokerURLError else { return false }
            return error.url == text && error.description.contains(reason)
                && error.description.hasPrefix("Invalid broker URL")
        }
    }

    @Test func appendsPathToBasePath() throws {
        #expect(try BrokerURL("http://h:1").appendingPath("/api/events").requestTarget == "/api/events")
        #expect(try BrokerURL("http://h:1/").appendingPath("api/events").requestTarget == "/api/events")
        #expect(try BrokerURL("http://h:1/base").appendingPath("/api/events").requestTarget == "/base/api/events")
        #expect(try BrokerURL("http://h:1/base/").appendingPath("/api/events").requestTarget == "/base/api/events")
        #expect(try BrokerURL("http://h:1/b?k=v").appendingPath("/api").requestTarget == "/b/api?k=v")
    }

    @Test func appendsRepeatedPercentEncodedQueryItems() throws {
        let url = try BrokerURL("http://h:1/api/events").appendingQueryItems([
            (name: "topic", value: "orders/*"), (name: "topic", value: "a b&c=d+e"),
            (name: "topic", value: "$broadcast"),
        ])
        #expect(url.requestTarget == "/api/events?topic=orders/*&topic=a%20b%26c%3Dd%2Be&topic=$broadcast")
    }

    @Test func appendsQueryItemsAfterExistingQuery() throws {
        let url = try BrokerURL("http://h:1/api?token=x").appendingQueryItem(name: "last event", value: "7")
        #expect(url.query == "token=x&last%20event=7")
        #expect(try BrokerURL("http://h/").appendingQueryItems([]).query == nil)
    }

    @Test func percentEncodesEverythingThatCouldChangeQueryMeaning() {
        #expect(BrokerURL.percentEncoded("AZaz09-._~/:@$*!'(),") == "AZaz09-._~/:@$*!'(),")
        #expect(
            BrokerURL.percentEncoded(" &=+;#?%\"<>[]\\^`{|}")
                == "%20%26%3D%2B%3B%23%3F%25%22%3C%3E%5B%5D%5C%5E%60%7B%7C%7D"
        )
        #expect(BrokerURL.percentEncoded("caf\u{E9}\n\u{1F389}") == "caf%C3%A9%0A%F0%9F%8E%89")
        #expect(BrokerURL.percentEncoded("") == "")
    }

    @Test func parsesWebSocketURLAsItsHTTPTwin() throws {
        let url = try BrokerURL(webSocket: " WS://broker.local:8080/api/ws?topic=a%2Fb ")
        #expect(url == BrokerURL(host: "broker.local", port: 8080, path: "/api/ws", query: "topic=a%2Fb"))
        #expect(url.webSocketDescription == "ws://broker.local:8080/api/ws?topic=a%2Fb")
        #expect(try BrokerURL(webSocket: "http://h/api/ws") == BrokerURL(host: "h", path: "/api/ws"))
        #expect(try BrokerURL(webSocket: "h:81") == BrokerURL(host: "h", port: 81))
        #expect(try BrokerURL(webSocket: "ws://[::1]:9/x").webSocketDescription == "ws://[::1]:9/x")
    }

    @Test(arguments: [
        ("wss://broker.local", "wss is not supported; use a ws:// URL"),
        ("https://broker.local", "wss is not supported"),
        ("ftp://broker.local", "unsupported scheme 'ftp'; use a ws:// URL"),
        ("ws://h:0", "the port '0'"),
        ("ws://", "the host is missing"),
    ])
    func rejectsWhatIsNotAWebSocketURL(_ text: String, _ reason: String) {
        #expect {
            try BrokerURL(webSocket: text)
        } throws: { error in
            guard let error = error as? BrokerURLError else { return false }
            return error.url == text && error.description.contains(reason)
        }
    }
}
