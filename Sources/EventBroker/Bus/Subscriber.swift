/// A connection the bus delivers to. Every method is called on the event loop the subscriber registered on.
///
/// The bus may hand a subscriber the same event twice (an event on two selected topics, or one that was both
/// replayed and delivered live during the handoff); a subscriber delivers only events newer than the last one it
/// wrote, which also keeps its stream in id order.
public protocol Subscriber: AnyObject {
    var clientID: ClientID { get }
    /// Hot path: write `event.sseChunk` (or the transport's frame), nothing per-connection allocated.
    func deliver(_ event: BrokerEvent)
    /// Called once per heartbeat interval.
    func heartbeat()
}
