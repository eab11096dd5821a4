/// A connection the bus delivers to. Every method is called on the event loop the subscriber registered on.
///
/// The bus hands a loop's pending events over in batches: `deliver` for each event (write, do not flush), then
/// `flush` once for every subscriber whose `deliver` returned true. A burst of events thus costs each connection
/// one syscall, not one per event.
///
/// The bus may hand a subscriber the same event twice (an event on two selected topics, or one that was both
/// replayed and delivered live during the handoff); a subscriber delivers only events newer than the last one it
/// wrote, which also keeps its stream in id order.
public protocol Subscriber: AnyObject {
    var clientID: ClientID { get }
    /// Hot path: write `event.sseChunk` (or the transport's frame) without flushing, allocating nothing per
    /// connection. Returns true when this call left unflushed writes that no earlier call of the batch reported.
    func deliver(_ event: BrokerEvent) -> Bool
    /// Flushes what `deliver` wrote.
    func flush()
    /// Called once per heartbeat interval.
    func heartbeat()
}
