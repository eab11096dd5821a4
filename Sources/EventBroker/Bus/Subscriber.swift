/// A connection the bus delivers to. Every method is called on the event loop the subscriber registered on.
///
/// The bus hands a loop's pending events over in batches: `deliver` for each event (write, do not flush), then
/// `flush` once for every subscriber whose `deliver` answered `.firstUnflushedWrite`. A burst of events thus costs
/// each connection one syscall, not one per event.
///
/// The bus may hand a subscriber the same event twice (an event on two selected topics, or one that was both
/// replayed and delivered live during the handoff); a subscriber delivers only events newer than the last one it
/// wrote, which also keeps its stream in id order.
public protocol Subscriber: AnyObject {
    var clientID: ClientID { get }
    /// Hot path: write `event.sseChunk` (or the transport's frame) without flushing, allocating nothing per
    /// connection.
    func deliver(_ event: BrokerEvent) -> Delivery
    /// Flushes what `deliver` wrote.
    func flush()
    /// Called once per heartbeat interval.
    func heartbeat()
}

/// What a subscriber did with an event.
public enum Delivery: Sendable {
    /// Not for this subscriber (a duplicate, not owed, or the connection is closing).
    case skipped
    /// Written or queued for the socket, behind earlier unflushed writes of this batch.
    case written
    /// Written, and the first unflushed write of this batch: the subscriber needs a `flush`.
    case firstUnflushedWrite
}
