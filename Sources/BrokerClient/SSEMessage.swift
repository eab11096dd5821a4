/// One event dispatched by ``SSEParser``: what a browser's `EventSource` hands to its listeners.
///
/// `id` and `lastEventID` differ on purpose: `id` is the `id:` field of this very event (`nil` when it had
/// none, as the broker's `connected` and `gap` control frames do), while `lastEventID` is the stream's
/// last event ID, which carries over from earlier events and is what a client sends back as `Last-Event-ID`
/// when it reconnects.
///
/// ```
/// retry: 3000          → retry = 3000
/// id: 42               → id = "42", lastEventID = "42"
/// event: update        → event = "update" (default "message")
/// data: a              → data = "a\nb"
/// data: b
///                      (blank line: dispatch)
/// ```
public struct SSEMessage: Hashable, Sendable {
    /// The `id:` field of this event, or `nil` when it had none (or only one containing NUL, which is ignored).
    public var id: String?
    /// The stream's last event ID when this event was dispatched (its own `id`, else the last one before it);
    /// `""` when no id was ever set, or the last `id:` was empty.
    public var lastEventID: String
    /// The event type: the last `event:` field, or `"message"` when there was none or it was empty.
    public var event: String
    /// The `data:` lines, joined with `"\n"`.
    public var data: String
    /// The `retry:` field of this event, in milliseconds, or `nil` when it had none.
    public var retry: Int?

    public init(id: String? = nil, lastEventID: String = "", event: String = "message", data: String, retry: Int? = nil)
    {
        self.id = id
        self.lastEventID = lastEventID
        self.event = event
        self.data = data
        self.retry = retry
    }
}
