import BrokerClient
import Testing

@Suite struct WebSocketMessageParserTests {
    @Test func mapsConnectedToTheEventStreamsConnectedFrame() throws {
        var parser = WebSocketMessageParser(lastEventID: "41")
        let output = try parser.parse(#"{"type":"connected","clientId":"0123456789abcde","topics":["orders","a/*"]}"#)
        #expect(
            output
                == .message(
                    SSEMessage(
                        lastEventID: "41",
                        event: "connected",
                        data: #"{"clientId":"0123456789abcde","topics":["orders","a/*"]}"#
                    )
                )
        )
        #expect(parser.lastEventID == "41")
    }

    @Test func mapsEventWithStringDataToItsText() throws {
        var parser = WebSocketMessageParser()
        let output = try parser.parse(
            #"{"type":"event","id":"1763780248000001","topic":"orders","event":"created","data":"caf\u00e9 \"x\""}"#
        )
        #expect(
            output
                == .message(
                    SSEMessage(
                        id: "1763780248000001",
                        lastEventID: "1763780248000001",
                        event: "created",
                        data: "caf\u{E9} \"x\""
                    )
                )
        )
        #expect(parser.lastEventID == "1763780248000001")
    }

    @Test func mapsJSONDataToCompactTextInSentKeyOrderWithNumbersAsWritten() throws {
        var parser = WebSocketMessageParser()
        let output = try parser.parse(
            """
            { "type" : "event", "id" : "7", "topics" : ["a", "b"],
              "data" : { "z" : 1.50, "a" : [ true, null, -2e10 ], "s" : "line\\nbreak \\u2028 / \\u0001" } }
            """
        )
        #expect(
            output
                == .message(
                    SSEMessage(
                        id: "7",
                        lastEventID: "7",
                        data: #"{"z":1.50,"a":[true,null,-2e10],"s":"line\nbreak \u2028 / \u0001"}"#
                    )
                )
        )
    }

    @Test func mapsScalarDataToItsJSONText() throws {
        var parser = WebSocketMessageParser()
        #expect(try parser.parse(#"{"type":"event","id":"1","data":42}"#) == .message(Self.event("1", data: "42")))
        #expect(try parser.parse(#"{"type":"event","id":"2","data":true}"#) == .message(Self.event("2", data: "true")))
        #expect(try parser.parse(#"{"type":"event","id":"3","data":null}"#) == .message(Self.event("3", data: "null")))
        #expect(try parser.parse(#"{"type":"event","id":"4"}"#) == .message(Self.event("4", data: "")))
    }

    @Test func defaultsEventNameToMessage() throws {
        var parser = WebSocketMessageParser()
        #expect(try parser.parse(#"{"type":"event","id":"1","event":"","data":"a"}"#) == .message(Self.event("1")))
        #expect(try parser.parse(#"{"type":"event","id":"2","event":null,"data":"a"}"#) == .message(Self.event("2")))
    }

    @Test func turnsLineEndsInStringDataIntoLineFeedsAsTheEventStreamDoes() throws {
        var parser = WebSocketMessageParser()
        let output = try parser.parse(#"{"type":"event","id":"1","data":"a\r\nb\rc\nd\r"}"#)
        #expect(output == .message(Self.event("1", data: "a\nb\nc\nd\n")))
    }

    @Test func mapsGapToAControlFrameThatKeepsTheLastEventID() throws {
        var parser = WebSocketMessageParser(lastEventID: "5")
        let output = try parser.parse(
            #"{"type":"event","event":"gap","data":{"lastEventId":"5","oldestAvailable":"9"}}"#
        )
        #expect(
            output
                == .message(
                    SSEMessage(lastEventID: "5", event: "gap", data: #"{"lastEventId":"5","oldestAvailable":"9"}"#)
                )
        )
        #expect(try parser.parse(#"{"type":"event","id":"9","data":"x"}"#) == .message(Self.event("9", data: "x")))
        #expect(parser.lastEventID == "9")
    }

    @Test func reportsErrorWithItsRefAsJSONText() throws {
        var parser = WebSocketMessageParser()
        let output = try parser.parse(
            #"{"type":"error","code":"invalid_topic","message":"Nope.","ref":{"n":1}}"#
        )
        let error = WebSocketServerError(code: "invalid_topic", message: "Nope.", ref: #"{"n":1}"#)
        #expect(output == .serverError(error))
        #expect(error.description == #"Nope. (invalid_topic, ref {"n":1})"#)
        #expect(
            try parser.parse(#"{"type":"error","message":"Bad."}"#)
                == .serverError(WebSocketServerError(code: "", message: "Bad."))
        )
    }

    @Test func ignoresAcksPongsAndUnknownTypes() throws {
        var parser = WebSocketMessageParser()
        #expect(try parser.parse(#"{"type":"ack","ref":1,"id":"8"}"#) == .ignored(type: "ack"))
        #expect(try parser.parse(#"{"type":"pong","ref":"p"}"#) == .ignored(type: "pong"))
        #expect(try parser.parse(#"{"type":"presence","who":[]}"#) == .ignored(type: "presence"))
        #expect(parser.lastEventID == "")
    }

    @Test(arguments: [
        ("not json", "is not JSON"),
        (#"{"type":"event","id":"1""#, "is not JSON"),
        (#"{"type":"event"} x"#, "is not JSON"),
        (#"["event"]"#, "is not a JSON object with a string \"type\""),
        (#"{"id":"1"}"#, "is not a JSON object with a string \"type\""),
        (#"{"type":7}"#, "is not a JSON object with a string \"type\""),
        (#"{"type":"event","id":true}"#, "whose \"id\" is neither a string nor a number"),
        (#"{"type":"event","id":"1","event":3}"#, "whose \"event\" is not a string"),
        (#"{"type":"error","code":[]}"#, "whose \"code\" is not a string"),
        (#"{"type":"event","data":"\ud800"}"#, "is not JSON"),
    ])
    func rejectsMessagesThatBreakTheProtocol(text: String, problem: String) {
        var parser = WebSocketMessageParser(lastEventID: "3")
        #expect {
            try parser.parse(text)
        } throws: { error in
            guard let error = error as? BrokerClientError else { return false }
            return error.code == .invalidMessage && error.message.contains(problem) && error.message.contains(text)
        }
        #expect(parser.lastEventID == "3")
    }

    @Test func refusesNestingDeeperThanTheLimit() throws {
        var parser = WebSocketMessageParser()
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(throws: BrokerClientError.self) {
            try parser.parse(#"{"type":"event","id":"1","data":"# + deep + "}")
        }
        let allowed = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(
            try parser.parse(#"{"type":"event","id":"1","data":"# + allowed + "}")
                == .message(Self.event("1", data: allowed)))
    }

    private static func event(_ id: String, data: String = "a") -> SSEMessage {
        SSEMessage(id: id, lastEventID: id, data: data)
    }
}
