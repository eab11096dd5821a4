import BrokerClient
import Testing

@Suite struct SSEParserTests {
    /// Feeds `text` in one piece to a fresh parser.
    private func parse(_ text: String) -> [SSEMessage] {
        var parser = SSEParser()
        return parser.feed(text.utf8)
    }

    private func parse(bytes: [UInt8]) -> [SSEMessage] {
        var parser = SSEParser()
        return parser.feed(bytes)
    }

    /// A stream that uses every rule at once: BOM, all three line endings, comments, retry, ids (persisting,
    /// reset, with NUL), event types, multi-line and empty data, multi-byte UTF-8, and a cut-off last event.
    private static let sampleStream: [UInt8] =
        [0xEF, 0xBB, 0xBF]
        + Array(
            (": welcome\r\n"
                + "retry: 3000\nevent: connected\ndata: {\"clientId\":\"c1\",\"topics\":[\"a\"]}\n\n"
                + "id: 1\r\nevent: update\r\ndata: first\r\ndata:  second\r\n\r\n"
                + ": hb\n\n"
                + "data: no id, caf\u{E9} \u{1F389}\r\rid: 2\rdata\r\r"
                + "retry: 50\n\n"
                + "id: bad\u{0}id\ndata: keeps 2\n\n"
                + "id\ndata: x:y:z\n\n"
                + "id: 99\nevent: cut\ndata: never dispatched").utf8
        )

    private static let sampleMessages: [SSEMessage] = [
        SSEMessage(event: "connected", data: "{\"clientId\":\"c1\",\"topics\":[\"a\"]}", retry: 3000),
        SSEMessage(id: "1", lastEventID: "1", event: "update", data: "first\n second"),
        SSEMessage(lastEventID: "1", data: "no id, caf\u{E9} \u{1F389}"),
        SSEMessage(id: "2", lastEventID: "2", data: ""),
        SSEMessage(lastEventID: "2", data: "keeps 2"),
        SSEMessage(id: "", lastEventID: "", data: "x:y:z"),
    ]

    // MARK: Fields

    @Test func dispatchesDataOnBlankLineWithDefaultEventType() {
        #expect(self.parse("data: hello\n\n") == [SSEMessage(event: "message", data: "hello")])
    }

    @Test func joinsDataLinesWithNewlineAndStripsOnlyTheLastOne() {
        #expect(self.parse("data: a\ndata: b\ndata:\n\n") == [SSEMessage(data: "a\nb\n")])
    }

    @Test func removesExactlyOneLeadingSpaceFromValue() {
        #expect(self.parse("data:none\n\n") == [SSEMessage(data: "none")])
        #expect(self.parse("data:  two\n\n") == [SSEMessage(data: " two")])
        #expect(self.parse("data:\ttab\n\n") == [SSEMessage(data: "\ttab")])
    }

    @Test func splitsFieldAndValueAtFirstColon() {
        #expect(self.parse("data: a: b :c\n\n") == [SSEMessage(data: "a: b :c")])
    }

    @Test func readsLineWithoutColonAsFieldWithEmptyValue() {
        #expect(self.parse("data\n\n") == [SSEMessage(data: "")])
        #expect(self.parse("data\ndata\n\n") == [SSEMessage(data: "\n")])
    }

    @Test func ignoresUnknownAndMisspelledFields() {
        #expect(self.parse("Data: x\nDATA: y\ndata : z\nfoo: bar\n\n").isEmpty)
        #expect(self.parse("foo: bar\ndata: kept\n\n") == [SSEMessage(data: "kept")])
    }

    @Test func usesEventTypeForOneEventOnly() {
        #expect(
            self.parse("event: update\ndata: a\n\ndata: b\n\n") == [
                SSEMessage(event: "update", data: "a"), SSEMessage(event: "message", data: "b"),
            ]
        )
    }

    @Test func treatsEmptyEventTypeAsMessage() {
        #expect(self.parse("event:\ndata: a\n\n") == [SSEMessage(event: "message", data: "a")])
        #expect(self.parse("event: x\nevent:\ndata: a\n\n") == [SSEMessage(event: "message", data: "a")])
    }

    @Test func blankLineWithoutDataResetsEventTypeAndDispatchesNothing() {
        #expect(self.parse("event: lost\n\ndata: a\n\n") == [SSEMessage(event: "message", data: "a")])
        #expect(self.parse("event: lost\n\n\n\n").isEmpty)
    }

    @Test func neverDispatchesTrailingEventWithoutBlankLine() {
        #expect(self.parse("data: a\n\ndata: b\n") == [SSEMessage(data: "a")])
        #expect(self.parse("data: a\n\ndata: b") == [SSEMessage(data: "a")])
        #expect(self.parse("data: b").isEmpty)
        #expect(self.parse("data: b\r").isEmpty)
    }

    @Test func decodesInvalidUTF8AsReplacementCharacter() {
        let bytes: [UInt8] = Array("data: a".utf8) + [0xFF, 0xC3] + Array("b\n\n".utf8)
        #expect(self.parse(bytes: bytes) == [SSEMessage(data: "a\u{FFFD}\u{FFFD}b")])
    }

    @Test func keepsMultiByteCharacters() {
        #expect(
            self.parse("data: caf\u{E9} \u{1F389} \u{65E5}\u{672C}\n\n") == [
                SSEMessage(data: "caf\u{E9} \u{1F389} \u{65E5}\u{672C}")
            ]
        )
    }

    // MARK: Line endings

    @Test(arguments: ["\n", "\r\n", "\r"])
    func acceptsEveryLineEnding(_ newline: String) {
        let text = ["id: 7", "event: e", "data: a", "data: b", "", ": c", "data: d", "", ""].joined(separator: newline)
        #expect(
            self.parse(text) == [
                SSEMessage(id: "7", lastEventID: "7", event: "e", data: "a\nb"),
                SSEMessage(lastEventID: "7", data: "d"),
            ]
        )
    }

    @Test func acceptsMixedLineEndingsInOneEvent() {
        #expect(self.parse("data: a\rdata: b\ndata: c\r\n\r") == [SSEMessage(data: "a\nb\nc")])
    }

    @Test func readsCRThenCRAsBlankLine() {
        #expect(self.parse("data: a\r\r") == [SSEMessage(data: "a")])
    }

    @Test func readsLFThenCRAsTwoLineEndings() {
        #expect(self.parse("data: a\n\r") == [SSEMessage(data: "a")])
    }

    @Test func readsCRAtEndOfChunkAndLFAtStartOfNextAsOneLineEnding() {
        var parser = SSEParser()
        #expect(parser.feed("data: a\r".utf8).isEmpty)
        #expect(parser.feed("\ndata: b\r".utf8).isEmpty)
        #expect(parser.feed("\n".utf8).isEmpty)
        #expect(parser.feed("\r".utf8) == [SSEMessage(data: "a\nb")])
        #expect(parser.feed("\n".utf8).isEmpty)
    }

    // MARK: Chunk boundaries

    @Test func parsesSampleStream() {
        var parser = SSEParser()
        #expect(parser.feed(Self.sampleStream) == Self.sampleMessages)
        #expect(parser.commentCount == 2)
        #expect(parser.retry == 50)
        #expect(parser.lastEventID == "")
    }

    @Test func givesSameEventsWhenSplitAtEveryOffset() {
        let bytes = Self.sampleStream
        for offset in 0...bytes.count {
            var parser = SSEParser()
            let messages = parser.feed(bytes[..<offset]) + parser.feed(bytes[offset...])
            #expect(messages == Self.sampleMessages, "split at \(offset)")
            #expect(parser.commentCount == 2, "split at \(offset)")
            #expect(parser.retry == 50, "split at \(offset)")
            #expect(parser.lastEventID == "", "split at \(offset)")
        }
    }

    @Test func givesSameEventsWhenSplitTwiceAtEveryPairOfOffsets() {
        let bytes = Self.sampleStream
        for first in 0...bytes.count {
            for second in first...bytes.count {
                var parser = SSEParser()
                let messages =
                    parser.feed(bytes[..<first]) + parser.feed(bytes[first..<second]) + parser.feed(bytes[second...])
                guard messages == Self.sampleMessages else {
                    Issue.record("split at \(first) and \(second): \(messages)")
                    return
                }
            }
        }
    }

    @Test func givesSameEventsWhenFedOneByteAtATime() {
        var parser = SSEParser()
        var messages: [SSEMessage] = []
        for byte in Self.sampleStream {
            messages += parser.feed([byte])
        }
        #expect(messages == Self.sampleMessages)
        #expect(parser.commentCount == 2)
    }

    // MARK: Byte-order mark

    @Test func stripsByteOrderMarkAtStreamStart() {
        #expect(self.parse("\u{FEFF}data: a\n\n") == [SSEMessage(data: "a")])
    }

    @Test func stripsOnlyOneByteOrderMark() {
        // The second one is part of the first line's field name, which is then unknown.
        #expect(self.parse("\u{FEFF}\u{FEFF}data: a\n\ndata: b\n\n") == [SSEMessage(data: "b")])
    }

    @Test func keepsByteOrderMarkAfterStreamStart() {
        #expect(
            self.parse("data: a\n\n\u{FEFF}data: b\n\ndata: c\n\n") == [SSEMessage(data: "a"), SSEMessage(data: "c")]
        )
        #expect(self.parse("data: \u{FEFF}x\n\n") == [SSEMessage(data: "\u{FEFF}x")])
    }

    @Test func stripsByteOrderMarkSplitAcrossChunks() {
        var parser = SSEParser()
        #expect(parser.feed([0xEF]).isEmpty)
        #expect(parser.feed([0xBB]).isEmpty)
        #expect(parser.feed([0xBF]).isEmpty)
        #expect(parser.feed("data: a\n\n".utf8) == [SSEMessage(data: "a")])
    }

    @Test func treatsIncompleteByteOrderMarkAsContent() {
        #expect(self.parse(bytes: [0xEF, 0xBB] + Array("data: a\n\ndata: b\n\n".utf8)) == [SSEMessage(data: "b")])
        #expect(self.parse(bytes: [0xEF] + Array("\ndata: a\n\n".utf8)) == [SSEMessage(data: "a")])
    }

    // MARK: Comments

    @Test func countsCommentsWithoutDispatching() {
        var parser = SSEParser()
        #expect(parser.feed(": hb\n\n:\n\n: keep-alive\r\n\r\n".utf8).isEmpty)
        #expect(parser.commentCount == 3)
    }

    @Test func ignoresCommentInsideEvent() {
        var parser = SSEParser()
        #expect(parser.feed("data: a\n: note\ndata: b\n\n".utf8) == [SSEMessage(data: "a\nb")])
        #expect(parser.commentCount == 1)
    }

    // MARK: Ids

    @Test func keepsLastEventIDAcrossEvents() {
        var parser = SSEParser()
        #expect(
            parser.feed("id: 1\ndata: a\n\ndata: b\n\n".utf8) == [
                SSEMessage(id: "1", lastEventID: "1", data: "a"),
                SSEMessage(id: nil, lastEventID: "1", data: "b"),
            ]
        )
        #expect(parser.lastEventID == "1")
    }

    @Test func setsLastEventIDFromBlockWithoutData() {
        var parser = SSEParser()
        #expect(parser.feed("id: 9\n\n".utf8).isEmpty)
        #expect(parser.lastEventID == "9")
        #expect(parser.feed("data: a\n\n".utf8) == [SSEMessage(id: nil, lastEventID: "9", data: "a")])
    }

    @Test func ignoresIDContainingNUL() {
        #expect(
            self.parse("id: 1\n\nid: a\u{0}b\ndata: x\n\n") == [SSEMessage(id: nil, lastEventID: "1", data: "x")]
        )
    }

    @Test func emptyIDResetsLastEventID() {
        #expect(
            self.parse("id: 5\ndata: a\n\nid\ndata: b\n\nid:\ndata: c\n\n") == [
                SSEMessage(id: "5", lastEventID: "5", data: "a"),
                SSEMessage(id: "", lastEventID: "", data: "b"),
                SSEMessage(id: "", lastEventID: "", data: "c"),
            ]
        )
    }

    @Test func keepsLastEventIDOfCutOffEventOutOfLastEventID() {
        var parser = SSEParser(lastEventID: "2")
        #expect(parser.feed("id: 3\ndata: cut".utf8).isEmpty)
        #expect(parser.lastEventID == "2")
        #expect(parser.feed("\n\n".utf8) == [SSEMessage(id: "3", lastEventID: "3", data: "cut")])
        #expect(parser.lastEventID == "3")
    }

    @Test func usesLastIDFieldOfEvent() {
        #expect(self.parse("id: 1\nid: 2\ndata: a\n\n") == [SSEMessage(id: "2", lastEventID: "2", data: "a")])
    }

    @Test func startsFromGivenLastEventID() {
        var parser = SSEParser(lastEventID: "41")
        #expect(parser.feed("data: a\n\n".utf8) == [SSEMessage(id: nil, lastEventID: "41", data: "a")])
        #expect(parser.lastEventID == "41")
    }

    // MARK: Retry

    @Test func readsRetryIntoEventAndParser() {
        var parser = SSEParser()
        #expect(
            parser.feed("retry: 3000\ndata: a\n\ndata: b\n\n".utf8) == [
                SSEMessage(data: "a", retry: 3000), SSEMessage(data: "b", retry: nil),
            ]
        )
        #expect(parser.retry == 3000)
    }

    @Test func readsRetryFromBlockWithoutData() {
        var parser = SSEParser()
        #expect(parser.feed("retry: 0\n\n".utf8).isEmpty)
        #expect(parser.retry == 0)
    }

    @Test(arguments: [
        "retry: 3s", "retry: -1", "retry: +1", "retry: 1.5", "retry:", "retry: ", "retry: 1 ", "retry:  1",
        "retry: \u{FF13}", "retry: 99999999999999999999999", "Retry: 7",
    ])
    func ignoresRetryThatIsNotOnlyASCIIDigits(_ line: String) {
        var parser = SSEParser()
        _ = parser.feed("retry: 1000\n\n".utf8)
        #expect(parser.feed("\(line)\ndata: a\n\n".utf8) == [SSEMessage(data: "a", retry: nil)])
        #expect(parser.retry == 1000)
    }

    // MARK: The broker's frames

    @Test func parsesBrokerWireFormat() {
        var parser = SSEParser()
        let stream =
            "retry: 3000\nevent: connected\ndata: {\"clientId\":\"k3\",\"topics\":[\"orders\"]}\n\n"
            + ": hb\n\n"
            + "id: 1763780248000001\nevent: order.created\ndata: {\"n\":1}\n\n"
            + "id: 1763780248000002\ndata: line one\ndata: line two\n\n"
            + "retry: 3000\n\n"
        #expect(
            parser.feed(stream.utf8) == [
                SSEMessage(event: "connected", data: "{\"clientId\":\"k3\",\"topics\":[\"orders\"]}", retry: 3000),
                SSEMessage(
                    id: "1763780248000001",
                    lastEventID: "1763780248000001",
                    event: "order.created",
                    data: "{\"n\":1}"
                ),
                SSEMessage(id: "1763780248000002", lastEventID: "1763780248000002", data: "line one\nline two"),
            ]
        )
        #expect(parser.commentCount == 1)
        #expect(parser.retry == 3000)
        #expect(parser.lastEventID == "1763780248000002")
    }
}
