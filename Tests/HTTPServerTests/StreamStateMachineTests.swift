import Testing

@testable import HTTPServer

/// Transcripts: each input, then the action the machine answers with.
@Suite struct StreamStateMachineTests {
    @Test func writesLiveEventsWhileWritableAndNothingIsQueued() {
        var machine = StreamStateMachine(queueLimit: 100)
        machine.started(isWritable: true, queuedReplay: 0)
        #expect(machine.eventPublished(bytes: 10) == .write)
        #expect(machine.eventPublished(bytes: 10) == .write)
        #expect(machine.heartbeatDue() == .write)
    }

    @Test func queuesLiveEventsBehindTheReplayThenDrains() {
        var machine = StreamStateMachine(queueLimit: 100)
        machine.started(isWritable: false, queuedReplay: 3)
        #expect(machine.eventPublished(bytes: 40) == .enqueue)
        #expect(machine.heartbeatDue() == .none)
        #expect(machine.writabilityChanged(isWritable: true) == .drainQueue)
        machine.drained(events: 4, liveBytes: 40, isWritable: true)
        #expect(machine.eventPublished(bytes: 40) == .write)
    }

    @Test func replayedEventsNeverCountAgainstTheSlowConsumerLimit() {
        var machine = StreamStateMachine(queueLimit: 100)
        machine.started(isWritable: false, queuedReplay: 10_000)
        #expect(machine.eventPublished(bytes: 60) == .enqueue)
        #expect(machine.eventPublished(bytes: 40) == .enqueue)
    }

    @Test func closesConsumerWhoseQueuedLiveBytesPassTheLimit() {
        var machine = StreamStateMachine(queueLimit: 100)
        machine.started(isWritable: true, queuedReplay: 0)
        #expect(machine.writabilityChanged(isWritable: false) == .none)
        #expect(machine.eventPublished(bytes: 60) == .enqueue)
        #expect(machine.eventPublished(bytes: 60) == .closeSlowConsumer)
        #expect(machine.eventPublished(bytes: 1) == .none)
        #expect(machine.isClosed)
    }

    @Test func becomingWritableWithAnEmptyQueueNeedsNoDrain() {
        var machine = StreamStateMachine(queueLimit: 100)
        machine.started(isWritable: true, queuedReplay: 0)
        #expect(machine.writabilityChanged(isWritable: false) == .none)
        #expect(machine.writabilityChanged(isWritable: true) == .none)
        #expect(machine.eventPublished(bytes: 1) == .write)
    }

    @Test func quiesceWritesARetryHintOnceThenIgnoresEverything() {
        var machine = StreamStateMachine(queueLimit: 100)
        machine.started(isWritable: true, queuedReplay: 0)
        #expect(machine.shouldQuiesce() == .endStream)
        #expect(machine.shouldQuiesce() == .none)
        #expect(machine.eventPublished(bytes: 1) == .none)
        #expect(machine.heartbeatDue() == .none)
    }

    @Test func closedChannelTakesNoMoreWrites() {
        var machine = StreamStateMachine(queueLimit: 100)
        machine.started(isWritable: true, queuedReplay: 0)
        machine.channelClosed()
        #expect(machine.eventPublished(bytes: 1) == .none)
        #expect(machine.writabilityChanged(isWritable: true) == .none)
        #expect(machine.shouldQuiesce() == .none)
    }
}
