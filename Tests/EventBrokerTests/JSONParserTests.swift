import EventBroker
import Testing

@Suite struct JSONParserTests {
    private func parse(_ text: String) throws(JSONParser.Error) -> JSONValue {
        try JSONParser.parse(Array(text.utf8))
    }

    private func failure(_ text: String) throws -> JSONParser.Error {
        try self.failure(bytes: Array(text.utf8))
    }

    private func failure(bytes: [UInt8]) throws -> JSONParser.Error {
        try #require(throws: JSONParser.Error.self) { try JSONParser.parse(bytes) }
    }

    // MARK: Round trips

    @Test func roundTripKeepsKeyOrderAndNumberTextAndDropsWhitespace() throws {
        let value = try self.parse("{ \"b\" : 1 , \"a\" : [ 1.50 , true , null ] }")
        #expect(value.serialized() == "{\"b\":1,\"a\":[1.50,true,null]}")
        #expect(value == .object([("b", .number("1")), ("a", .array([.number("1.50"), .bool(true), .null]))]))
    }

    @Test func roundTripIsStableOnCompactText() throws {
        let compact = "{\"z\":{\"y\":[],\"x\":{}},\"n\":-0.0e+10,\"s\":\"\\\"\\\\\\n\",\"f\":false,\"u\":null}"
        #expect(try self.parse(compact).serialized() == compact)
        #expect(try self.parse(try self.parse(compact).serialized()) == (try self.parse(compact)))
    }

    @Test func parsesScalarsAtTopLevel() throws {
        #expect(try self.parse("null") == .null)
        #expect(try self.parse("true") == .bool(true))
        #expect(try self.parse("false") == .bool(false))
        #expect(try self.parse(" \t\r\n42 \n") == .number("42"))
        #expect(try self.parse("\"hi\"") == .string("hi"))
        #expect(try self.parse("[]") == .array([]))
        #expect(try self.parse("{}") == .object([]))
    }

    @Test(arguments: [
        "0", "-0", "1", "-1", "10", "1.5", "-1.5", "0.0001", "1e5", "1E5", "1e+5", "1e-5", "1.50E-007",
        "123456789012345678901234567890", "-0.0",
    ])
    func keepsValidNumbersVerbatim(text: String) throws {
        #expect(try self.parse(text) == .number(text))
        #expect(try self.parse(text).serialized() == text)
    }

    @Test(arguments: [
        "01", "00", "-01", "1.", ".5", "-", "-.5", "1e", "1e+", "1E-", "+1", "1.e5", "0x10", "1a",
        "Infinity", "NaN", "--1", "1..2", "1e5.5",
    ])
    func refusesInvalidNumbers(text: String) throws {
        _ = try self.failure(text)
        _ = try self.failure("[\(text)]")
    }

    @Test func objectSubscriptFindsTheFirstValueOfAKey() throws {
        let value = try self.parse("{\"a\":1,\"b\":2,\"a\":3}")
        #expect(value["a"] == .number("1"))
        #expect(value["b"] == .number("2"))
        #expect(value["c"] == nil)
        #expect(JSONValue.array([])["a"] == nil)
        #expect(value.serialized() == "{\"a\":1,\"b\":2,\"a\":3}")
    }

    @Test func equalityRespectsKeyOrder() throws {
        #expect(try self.parse("{\"a\":1,\"b\":2}") != (try self.parse("{\"b\":2,\"a\":1}")))
        #expect(try self.parse("{\"a\":1.0}") != (try self.parse("{\"a\":1}")))
        #expect(Set([try self.parse("[1, 2]"), try self.parse("[1,2]")]).count == 1)
    }

    @Test func typeNamesDescribeTheValue() throws {
        #expect(try self.parse("null").typeName == "null")
        #expect(try self.parse("true").typeName == "a boolean")
        #expect(try self.parse("1").typeName == "a number")
        #expect(try self.parse("\"\"").typeName == "a string")
        #expect(try self.parse("[]").typeName == "an array")
        #expect(try self.parse("{}").typeName == "an object")
    }

    // MARK: Strings

    @Test func decodesEveryEscape() throws {
        let value = try self.parse(#""\" \\ \/ \b \f \n \r \t""#)
        #expect(value == .string("\" \\ / \u{08} \u{0C} \n \r \t"))
    }

    @Test func decodesUnicodeEscapes() throws {
        #expect(try self.parse(#""caf\u00e9""#) == .string("café"))
        #expect(try self.parse(#""\u00E9\u0041""#) == .string("éA"))
        #expect(try self.parse(#""\u0000""#) == .string("\u{0}"))
    }

    @Test func decodesSurrogatePairs() throws {
        #expect(try self.parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try self.parse(#""a\uD83D\uDE00b""#) == .string("a😀b"))
    }

    @Test(arguments: [
        #""\ud83d""#, #""\ud83dx""#, #""\ud83d\u0041""#, #""\ude00""#, #""\ude00\ud83d""#,
        #""\ud83d\ud83d""#, #""\ud83d\n""#,
    ])
    func refusesUnpairedSurrogates(text: String) throws {
        _ = try self.failure(text)
    }

    @Test func keepsRawUTF8Text() throws {
        #expect(try self.parse("\"héllo 😀 ✓\"") == .string("héllo 😀 ✓"))
        #expect(try self.parse("{\"ключ\":\"значение\"}")["ключ"] == .string("значение"))
    }

    @Test func refusesRawControlCharactersInStrings() throws {
        for byte in UInt8(0)..<0x20 {
            let error = try self.failure(bytes: [UInt8(ascii: "\""), UInt8(ascii: "a"), byte, UInt8(ascii: "\"")])
            #expect(error.offset == 2, "byte \(byte)")
        }
        // DEL is not a control character for JSON.
        #expect(try JSONParser.parse([0x22, 0x7F, 0x22]) == .string("\u{7F}"))
    }

    @Test(arguments: [#""\x""#, #""\u12""#, #""\u12g4""#, #""\"#, #""\'""#, #""abc"#, "\"", #""\U00e9""#])
    func refusesBadEscapesAndUnterminatedStrings(text: String) throws {
        _ = try self.failure(text)
    }

    @Test(
        arguments: [
            [0x22, 0xFF, 0x22],  // never valid
            [0x22, 0xC3, 0x22],  // truncated sequence
            [0x22, 0xC0, 0xAF, 0x22],  // overlong '/'
            [0x22, 0xED, 0xA0, 0x80, 0x22],  // UTF-8-encoded surrogate
            [0x22, 0x61, 0x5C, 0x6E, 0xE2, 0x82, 0x22],  // truncated after an escape
            [0xEF, 0xBB, 0xBF, 0x31],  // byte-order mark outside a string
            [0xFF],
        ] as [[UInt8]])
    func refusesInvalidUTF8(bytes: [UInt8]) throws {
        _ = try self.failure(bytes: bytes)
    }

    // MARK: Structure

    @Test(arguments: [
        "", " ", "[", "[1", "[1,", "[1,]", "{", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,}", "{a:1}",
        "{1:1}", "{\"a\" 1}", "[1 2]", "tru", "trux", "nul", "True", "'a'", "}", "]", ",",
    ])
    func refusesMalformedStructure(text: String) throws {
        _ = try self.failure(text)
    }

    @Test(arguments: ["1 2", "{} {}", "[]]", "null x", "\"a\"\"b\"", "1,", "{}/"])
    func refusesTrailingGarbage(text: String) throws {
        let error = try self.failure(text)
        #expect(error.reason == "unexpected data after the JSON value")
    }

    // MARK: Depth

    private static func nestedArrays(_ depth: Int, leaf: String = "") -> String {
        String(repeating: "[", count: depth) + leaf + String(repeating: "]", count: depth)
    }

    @Test func acceptsNestingUpToTheLimit() throws {
        #expect(JSONParser.maxDepth == 64)
        #expect(try self.parse(Self.nestedArrays(63)).serialized() == Self.nestedArrays(63))
        #expect(try self.parse(Self.nestedArrays(63, leaf: "1")).serialized() == Self.nestedArrays(63, leaf: "1"))
        #expect(try self.parse(Self.nestedArrays(64)).serialized() == Self.nestedArrays(64))
    }

    /// 64 levels are allowed whatever the innermost container holds, as they are when it is empty.
    @Test func acceptsAScalarInsideTheDeepestAllowedContainer() throws {
        #expect(try self.parse(Self.nestedArrays(64, leaf: "1")).serialized() == Self.nestedArrays(64, leaf: "1"))
        let objects = String(repeating: "{\"a\":", count: 63) + "[1]" + String(repeating: "}", count: 63)
        #expect(try self.parse(objects).serialized() == objects)
    }

    @Test func refusesNestingBeyondTheLimit() throws {
        let error = try self.failure(Self.nestedArrays(65))
        #expect(error.offset == 64)
        #expect(error.reason.contains("64"))
        _ = try self.failure(Self.nestedArrays(65, leaf: "1"))
        _ = try self.failure(Self.nestedArrays(10_000))
        _ = try self.failure(String(repeating: "{\"a\":", count: 65) + "1" + String(repeating: "}", count: 65))
    }

    // MARK: Error offsets

    @Test func errorsPointAtTheOffendingByte() throws {
        #expect(try self.failure("").offset == 0)
        #expect(try self.failure("  ").offset == 2)
        #expect(try self.failure("01").offset == 1)
        #expect(try self.failure("[1,]").offset == 3)
        #expect(try self.failure("[1 2]").offset == 3)
        #expect(try self.failure("{\"a\" 1}").offset == 5)
        #expect(try self.failure("{\"a\":1,}").offset == 7)
        #expect(try self.failure("[1.]").offset == 3)
        #expect(try self.failure("[1e]").offset == 3)
        #expect(try self.failure("\"ab\u{1}\"").offset == 3)
        #expect(try self.failure(#""\ud83d""#).offset == 7)
        #expect((2...3).contains(try self.failure(#""\q""#).offset))  // at or just past the escape letter
        #expect(try self.failure(bytes: [0x5B, 0x22, 0x61, 0xFF, 0x22, 0x5D]).offset == 2)  // start of the bad run
        #expect(try self.failure("{} x").offset == 3)
    }

    @Test func errorDescriptionNamesReasonAndOffset() throws {
        let error = try self.failure("[1,]")
        #expect(error.description == "\(error.reason) at byte 3")
        #expect(!error.reason.isEmpty)
    }

    // MARK: Quoting

    @Test func quotedEscapesQuotesAndBackslash() {
        #expect(JSONValue.quoted("say \"hi\" \\ bye") == #""say \"hi\" \\ bye""#)
        #expect(JSONValue.quoted("") == "\"\"")
        #expect(JSONValue.quoted("a/b") == "\"a/b\"")
    }

    @Test func quotedUsesShortEscapesWhereJSONHasThem() {
        #expect(JSONValue.quoted("\n\r\t\u{08}\u{0C}") == #""\n\r\t\b\f""#)
    }

    @Test func quotedEscapesOtherControlCharactersAsU00XX() {
        #expect(JSONValue.quoted("\u{0}") == #""\u0000""#)
        #expect(JSONValue.quoted("\u{1}\u{1F}") == #""\u0001\u001f""#)
        #expect(JSONValue.quoted("a\u{0B}b") == #""a\u000bb""#)
        #expect(JSONValue.quoted("\u{7F}") == "\"\u{7F}\"")
    }

    @Test func quotedEscapesLineAndParagraphSeparators() {
        #expect(JSONValue.quoted("a\u{2028}b\u{2029}c") == #""a\u2028b\u2029c""#)
    }

    @Test func quotedLeavesOtherUnicodeAlone() {
        #expect(JSONValue.quoted("café 😀 ✓") == "\"café 😀 ✓\"")
        #expect(JSONValue.quoted("e\u{301}") == "\"e\u{301}\"")
    }

    @Test func quotedTextParsesBackToTheSameString() throws {
        var everyControl = ""
        for value in 0..<0x20 { everyControl.unicodeScalars.append(Unicode.Scalar(UInt8(value))) }
        for text in ["plain", "\"\\/", everyControl, "\u{2028}\u{2029}", "😀\r\n", "\u{7F}", "e\u{301}"] {
            #expect(try self.parse(JSONValue.quoted(text)) == .string(text), "\(text.debugDescription)")
        }
    }

    @Test func serializedStringsUseTheSameEscaping() throws {
        let value = JSONValue.object([("k\n", .array([.string("\u{2028}\""), .number("-1.0")]))])
        #expect(value.serialized() == #"{"k\n":["\u2028\"",-1.0]}"#)
        #expect(try self.parse(value.serialized()) == value)
    }
}
