import EventBroker
import Testing

@Suite struct EventIDTests {
    @Test func parsesDecimalDigits() {
        #expect(EventID(parsing: "0") == .zero)
        #expect(EventID(parsing: "7") == EventID(rawValue: 7))
        #expect(EventID(parsing: "1763780248000001") == EventID(rawValue: 1_763_780_248_000_001))
        #expect(EventID(parsing: "18446744073709551615") == EventID(rawValue: .max))
    }

    @Test func parsesLeadingZeros() {
        #expect(EventID(parsing: "007") == EventID(rawValue: 7))
        #expect(EventID(parsing: "00000000000000000000") == .zero)  // 20 characters
        #expect(EventID(parsing: "00000000000000000042") == EventID(rawValue: 42))
    }

    @Test func parsesSubstrings() {
        let text = "id: 123"
        #expect(EventID(parsing: text.dropFirst(4)) == EventID(rawValue: 123))
    }

    @Test(arguments: [
        "", "-1", "+1", "1a", "a1", " 1", "1 ", "1.0", "1e3", "0x10", "١", "\u{FF11}",
        "18446744073709551616",  // UInt64.max + 1
        "99999999999999999999",  // 20 digits, overflows
        "000000000000000000001",  // 21 characters, even though the value is small
    ])
    func refusesAnythingButAnInRangeDecimal(text: String) {
        #expect(EventID(parsing: text) == nil)
    }

    @Test func ordersByNumericValueNotText() {
        let nine = EventID(rawValue: 9)
        let ten = EventID(rawValue: 10)
        #expect(nine < ten)
        #expect(!(ten < nine))
        #expect(EventID.zero < nine)
        #expect([ten, .zero, nine].sorted() == [.zero, nine, ten])
        #expect(max(nine, ten) == ten)
    }

    @Test(arguments: [UInt64(0), 1, 9, 10, 1_763_780_248_000_001, .max])
    func descriptionRoundTrips(raw: UInt64) {
        let id = EventID(rawValue: raw)
        #expect(id.description == String(raw))
        #expect(EventID(parsing: id.description) == id)
    }

    @Test func descriptionHasNoLeadingZeros() {
        #expect(EventID(parsing: "0042")?.description == "42")
    }

    // MARK: Generator

    @Test func generatorStartsAtBootMicrosecondsAndIncreasesStrictly() {
        var generator = EventIDGenerator(bootTimeMicroseconds: 1_700_000_000_000_000)
        #expect(generator.floor == EventID(rawValue: 1_700_000_000_000_000))
        #expect(generator.peek == EventID(rawValue: 1_700_000_000_000_000))
        #expect(generator.lastIssued == nil)

        let first = generator.make()
        #expect(first == EventID(rawValue: 1_700_000_000_000_000))
        #expect(generator.lastIssued == first)
        #expect(generator.peek == EventID(rawValue: 1_700_000_000_000_001))

        var previous = first
        for _ in 0..<1000 {
            let next = generator.make()
            #expect(next.rawValue == previous.rawValue + 1)
            previous = next
        }
        #expect(generator.lastIssued == previous)
        #expect(generator.peek == EventID(rawValue: previous.rawValue + 1))
        #expect(generator.floor == first)
    }

    @Test func peekDoesNotIssue() {
        var generator = EventIDGenerator(bootTimeMicroseconds: 100)
        #expect(generator.peek == EventID(rawValue: 100))
        #expect(generator.peek == EventID(rawValue: 100))
        #expect(generator.lastIssued == nil)
        #expect(generator.make() == EventID(rawValue: 100))
    }

    @Test func generatorNeverIssuesZero() {
        var generator = EventIDGenerator(bootTimeMicroseconds: 0)
        #expect(generator.floor == EventID(rawValue: 1))
        #expect(generator.make() == EventID(rawValue: 1))
    }

    @Test func idsKeepIncreasingAcrossARestart() {
        var earlier = EventIDGenerator(bootTimeMicroseconds: 1_700_000_000_000_000)
        var issued: [EventID] = []
        for _ in 0..<10_000 { issued.append(earlier.make()) }

        // One second later: the earlier run published fewer than a million events per second.
        var later = EventIDGenerator(bootTimeMicroseconds: 1_700_000_001_000_000)
        let first = later.make()
        #expect(issued.allSatisfy { $0 < first })
        #expect(first > earlier.lastIssued!)
        #expect(later.floor > issued.last!)
    }

    @Test func storedIDAboveBootTimeStartsJustPastIt() {
        let stored = EventID(rawValue: 1_700_000_005_000_000)
        var generator = EventIDGenerator(bootTimeMicroseconds: 1_700_000_001_000_000, lastStoredID: stored)
        #expect(generator.floor == EventID(rawValue: stored.rawValue + 1))
        #expect(generator.lastIssued == nil)
        #expect(generator.make() == EventID(rawValue: stored.rawValue + 1))
    }

    @Test func storedIDBelowBootTimeIsIgnored() {
        var generator = EventIDGenerator(
            bootTimeMicroseconds: 1_700_000_001_000_000, lastStoredID: EventID(rawValue: 42))
        #expect(generator.make() == EventID(rawValue: 1_700_000_001_000_000))
    }

    @Test func storedIDEqualToBootTimeStartsOnePastIt() {
        var generator = EventIDGenerator(
            bootTimeMicroseconds: 1_000, lastStoredID: EventID(rawValue: 1_000))
        #expect(generator.make() == EventID(rawValue: 1_001))
    }
}
