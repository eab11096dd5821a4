import BrokerClient
import Testing

@Suite struct SSEReconnectPolicyTests {
    private func delays(_ policy: SSEReconnectPolicy = SSEReconnectPolicy(), serverRetry: Int?, count: Int)
        -> [Duration]
    {
        (0..<count).map { policy.delay(afterFailures: $0, serverRetry: serverRetry) }
    }

    @Test func startsAtOneSecondAndDoublesToThirtySecondCap() {
        #expect(
            self.delays(serverRetry: nil, count: 8) == [1, 2, 4, 8, 16, 30, 30, 30].map { Duration.seconds($0) }
        )
    }

    @Test func startsAtServerRetryHint() {
        #expect(
            self.delays(serverRetry: 3000, count: 6) == [3, 6, 12, 24, 30, 30].map { Duration.seconds($0) }
        )
    }

    @Test func honoursServerRetryAboveCapWithoutDoubling() {
        #expect(self.delays(serverRetry: 60_000, count: 3) == [.seconds(60), .seconds(60), .seconds(60)])
    }

    @Test func backsOffFailuresEvenWhenServerAsksForZero() {
        #expect(
            self.delays(serverRetry: 0, count: 4) == [
                .zero, .milliseconds(200), .milliseconds(400), .milliseconds(800),
            ]
        )
    }

    @Test func usesConfiguredInitialAndMaximumDelay() {
        let policy = SSEReconnectPolicy(initialDelay: .milliseconds(10), maximumDelay: .milliseconds(50))
        #expect(
            self.delays(policy, serverRetry: nil, count: 5) == [10, 20, 40, 50, 50].map { Duration.milliseconds($0) }
        )
    }

    @Test func neverOverflowsAfterManyFailures() {
        #expect(SSEReconnectPolicy().delay(afterFailures: 10_000, serverRetry: nil) == .seconds(30))
    }
}
