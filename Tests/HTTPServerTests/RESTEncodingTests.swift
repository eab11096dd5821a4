import EventBroker
import NIOCore
import Testing

@testable import HTTPServer

/// The REST layer's own encoding and decoding, without a server: the answers' JSON and the raw publish's query.
@Suite struct RESTEncodingTests {
    @Test(arguments: [UInt64(0), 7, 1_234_567_890, 12_345_678_901, 1_796_074_707_034_911, .max])
    func answersAPublishWithItsIdAsAQuotedNumber(_ value: UInt64) throws {
        let topics = try ["a", "room/b-1", "x:y@z.$_"].map { name throws(BrokerError) in try TopicName(name) }
        for count in 0...3 {
            let result = PublishResult(
                id: EventID(rawValue: value), topics: Array(topics.prefix(count)), subscribers: Int(value % 1000))
            let names = topics.prefix(count).map { "\"\($0.value)\"" }.joined(separator: ",")
            let response = RESTAPI.published(result)
            #expect(response.body == "{\"id\":\"\(value)\",\"topics\":[\(names)],\"subscribers\":\(value % 1000)}")
            #expect(response.headers.map(\.0) == ["Content-Type"])
        }
        var replay = PublishResult(id: EventID(rawValue: value), topics: topics, subscribers: 0)
        replay.isReplay = true
        #expect(RESTAPI.published(replay).headers.contains { $0 == ("Idempotent-Replayed", "true") })
    }

    @Test func readsARawPublishFromItsQueryTopicsInOrderAndTheFirstOfEveryOtherName() throws {
        let target = RequestTarget(
            uri: "/api/events/publish?topic=a&topics=b,c&topic=d&event=e1&event=e2&retry=5&retry=x&private=yes"
                + "&to=ignored&ephemeral=0")
        let fields = try PublishBody.decode(
            kind: .publish, contentType: "text/plain", target: target, body: ByteBuffer(string: "hello"))
        #expect(fields.topics == ["a", "d", "b", "c"])
        #expect(fields.event == "e1")
        #expect(fields.retry == 5)
        #expect(fields.isPrivate)
        #expect(!fields.isEphemeral)
        #expect(fields.to == "ignored")
        #expect(fields.data == "hello")
        #expect(!fields.dataIsJSON)
    }

    @Test func keepsATextBodyAsItIsAndRefusesOneThatIsNotUTF8() throws {
        let target = RequestTarget(uri: "/api/events/publish?topic=a")
        for text in ["plain ascii", "h\u{E9}llo \u{2713} \u{1F600}", ""] {
            let fields = try PublishBody.decode(
                kind: .publish, contentType: "text/plain", target: target, body: ByteBuffer(string: text))
            #expect(fields.data == text)
        }
        for bytes: [UInt8] in [[0xFF, 0xFE, 0x41], [0x41, 0xC3], [0xE2, 0x82, 0x41], [0xED, 0xA0, 0x80]] {
            #expect(throws: APIError.self, "\(bytes)") {
                try PublishBody.decode(
                    kind: .publish, contentType: "text/plain", target: target, body: ByteBuffer(bytes: bytes))
            }
        }
    }

    @Test func matchesRawPublishNamesByTheirDecodedBytesAndSkipsEmptyPairs() throws {
        let target = RequestTarget(
            uri: "/api/events/publish?&%74opic=a%2Fb&topic+=no&Topic=no&=x&topic&ev%65nt=e+1&private=&retry=7&")
        let fields = try PublishBody.decode(
            kind: .publish, contentType: "text/plain", target: target, body: ByteBuffer(string: "hi"))
        #expect(fields.topics == ["a/b", ""])
        #expect(fields.event == "e 1")
        #expect(!fields.isPrivate)
        #expect(fields.retry == 7)
    }

    @Test(arguments: [
        ("application/json", true, false), ("Application/JSON; charset=utf-8", true, false),
        ("application/vnd.api+json", true, false), ("text/plain", false, false), ("TEXT/html ; q=1", false, false),
        ("application/octet-stream", false, false), ("application/x-www-form-urlencoded", false, true),
        ("application/jsonx", false, false), ("json", false, false),
    ])
    func readsABodyByItsMediaType(_ contentType: String, _ isJSON: Bool, _ isForm: Bool) throws {
        // A broadcast reads a text body raw; a JSON or form body carries the fields; anything else is refused.
        let isText = contentType.lowercased().hasPrefix("text/") || contentType == "application/octet-stream"
        let body = isForm ? "data=hello" : isJSON ? #"{"data":"hello"}"# : "hello"
        let decode = {
            try PublishBody.decode(
                kind: .broadcast, contentType: contentType, target: RequestTarget(uri: "/api/messages/broadcast"),
                body: ByteBuffer(string: body))
        }
        if isJSON || isForm || isText {
            #expect(try decode().data == "hello")
        } else {
            #expect(throws: APIError.self) { try decode() }
        }
    }

    @Test func refusesABadRetryInARawPublish() {
        let target = RequestTarget(uri: "/api/events/publish?topic=a&retry=soon")
        #expect(throws: APIError.self) {
            try PublishBody.decode(
                kind: .publish, contentType: "text/plain", target: target, body: ByteBuffer(string: "hello"))
        }
    }
}
