import EventBroker
import Testing

@testable import HTTPServer

/// The browser demo and broker.js as the server hands them out: from the binary, with validators, security headers
/// and the right types, and from a development directory when one is given.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct WebAssetsTests {
    @Test func thePageIsServedAtTheRootWithASecurityPolicy() async throws {
        let server = try await TestServer()
        let page = try server.request("GET", "/")
        #expect(page.status == 200)
        #expect(page.header("content-type") == "text/html; charset=utf-8")
        #expect(page.header("content-security-policy") == WebAssets.contentSecurityPolicy)
        #expect(page.header("x-content-type-options") == "nosniff")
        #expect(page.header("cache-control") == "no-cache")
        #expect(page.text.contains("<!doctype html>") || page.text.contains("<!DOCTYPE html>"))
        #expect(page.text.contains("broker.js"), "the page loads the client library")
        try await server.stop()
    }

    @Test func everyFileHasItsTypeAndTheEmbeddedBytes() async throws {
        let server = try await TestServer()
        let types = [
            "broker.js": "text/javascript; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
            "style.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml",
        ]
        for (name, type) in types {
            let response = try server.request("GET", "/\(name)")
            #expect(response.status == 200, "\(name)")
            #expect(response.header("content-type") == type, "\(name)")
            #expect(!response.body.isEmpty, "\(name)")
            #expect(response.header("content-security-policy") == nil, "only the page carries the policy")
        }
        try await server.stop()
    }

    @Test func aMatchingETagAnswers304AndHeadSendsNoBody() async throws {
        let server = try await TestServer()
        let first = try server.request("GET", "/broker.js")
        let etag = try #require(first.header("etag"))
        #expect(etag.hasPrefix("\"") && etag.hasSuffix("\""))
        let connection = try server.connect()
        let cached = try connection.request("GET", "/broker.js", headers: [("If-None-Match", "\"other\", \(etag)")])
        #expect(cached.status == 304)
        #expect(cached.body.isEmpty)
        #expect(cached.header("content-length") == nil)
        #expect(cached.header("etag") == etag)
        // The connection stays usable after a bodiless answer.
        let stale = try connection.request("GET", "/broker.js", headers: [("If-None-Match", "\"other\"")])
        #expect(stale.status == 200)
        #expect(stale.body == first.body)
        let headConnection = try server.connect()
        try headConnection.send("HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let head = try headConnection.readHead()
        #expect(head.status == 200)
        let length = head.headers.first { $0.name.lowercased() == "content-length" }.flatMap { Int($0.value) }
        #expect(length == (try server.request("GET", "/").body.count))
        // No body followed: the next answer on the connection parses from its first byte.
        #expect(try headConnection.request("GET", "/api/health").status == 200)
        try await server.stop()
    }

    @Test func otherPathsAndMethodsAreRefusedAsJSON() async throws {
        let server = try await TestServer()
        for path in ["/index.html", "/nope.js", "/broker.js/x", "/../broker.js", "/%2e%2e/etc/passwd", "/.env"] {
            let response = try server.request("GET", path)
            #expect(response.status == 404, "\(path)")
            #expect(response.errorCode == "not_found", "\(path)")
        }
        let post = try server.request("POST", "/", body: "x")
        #expect(post.status == 405)
        #expect(post.header("allow") == "GET, HEAD, OPTIONS")
        try await server.stop()
    }

    @Test func aDevelopmentCopyReplacesTheFilesItHasAndOnlyThose() async throws {
        let server = try await TestServer {
            $0.webAssets = WebAssets(contents: ["app.js": Array("console.log('dev copy')\n".utf8)])
        }
        #expect(try server.request("GET", "/app.js").text == "console.log('dev copy')\n")
        #expect(try server.request("GET", "/broker.js").body == Array(WebAssetsTests.embedded("broker.js").utf8))
        try await server.stop()
    }

    static func embedded(_ name: String) -> String {
        switch name {
        case "broker.js": return String(decoding: PackageResources.broker_js, as: UTF8.self)
        default: return ""
        }
    }
}
