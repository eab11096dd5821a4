import Dispatch
import NIOCore
import NIOEmbedded

/// An `EmbeddedEventLoop` that counts `execute` calls, so a test can see how many hand-offs a publish costs.
///
/// Confined to the test's thread, like the loop it wraps.
final class CountingEventLoop: EventLoop, @unchecked Sendable {
    let base = EmbeddedEventLoop()
    private(set) var executeCount = 0

    var inEventLoop: Bool { self.base.inEventLoop }
    var now: NIODeadline { self.base.now }

    func execute(_ task: @escaping @Sendable () -> Void) {
        self.executeCount += 1
        self.base.execute(task)
    }

    @discardableResult
    func scheduleTask<T>(deadline: NIODeadline, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        self.base.scheduleTask(deadline: deadline, task)
    }

    @discardableResult
    func scheduleTask<T>(in delay: TimeAmount, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        self.base.scheduleTask(in: delay, task)
    }

    func preconditionInEventLoop(file: StaticString, line: UInt) {
        self.base.preconditionInEventLoop(file: file, line: line)
    }

    func preconditionNotInEventLoop(file: StaticString, line: UInt) {
        self.base.preconditionNotInEventLoop(file: file, line: line)
    }

    func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable ((any Error)?) -> Void) {
        self.base.shutdownGracefully(queue: queue, callback)
    }
}
