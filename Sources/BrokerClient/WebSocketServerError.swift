/// An `error` message from the broker over a WebSocket: a request of the client was refused, or the client broke
/// the protocol in a way the broker chose to report rather than close for.
///
/// ```
/// {"type":"error","code":"invalid_topic","message":"Topic names …","ref":7}
///                  └ code               └ message               └ ref = "7"
/// ```
/// The connection stays open after one; ``WebSocketClient/run(lastEventID:onEvent:)`` reports it as
/// ``WebSocketClient/Event/serverError(_:)`` and reads on.
public struct WebSocketServerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The broker's snake_case error code, such as `invalid_topic`; `""` if the message had none.
    public var code: String
    /// The broker's sentence about what went wrong.
    public var message: String
    /// The `ref` of the client message this answers, as compact JSON text (`7`, `"sub-1"`), or `nil` when the
    /// error answers no message that had one.
    public var ref: String?

    public init(code: String, message: String, ref: String? = nil) {
        self.code = code
        self.message = message
        self.ref = ref
    }

    public var description: String {
        let context = [self.code.isEmpty ? nil : self.code, self.ref.map { "ref \($0)" }].compactMap { $0 }
        return context.isEmpty ? self.message : "\(self.message) (\(context.joined(separator: ", ")))"
    }
}
