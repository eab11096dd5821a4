import HTTPServer

/// The three fuzz targets; the first byte of an input picks one (its value modulo 3), so one binary fuzzes all of
/// them and a saved input replays on its own.
///
/// ```
/// byte 0    target          rest of the input
/// '0' (48)  http            control, split, then the bytes of one connection: requests, pipelined or not
///                           (also parsed alone, whole and split, which must agree)
/// '1' (49)  publishBody     request target, "\n", body: decoded as every kind with every content type
/// '2' (50)  webSocket       control, split, flags, then frames (or messages, one a line) after an upgrade
/// ```
/// `control` and `split` are described in `PipelineRun.Control` and `PipelineRun.pieces`; `flags` in
/// `WebSocketInput`.
enum FuzzTarget: Int, CaseIterable {
    case http = 0
    case publishBody = 1
    case webSocket = 2

    /// The target `input` is for; nil for an empty input.
    init?(input: [UInt8]) {
        guard let first = input.first else { return nil }
        self.init(rawValue: Int(first) % Self.allCases.count)
    }

    /// The name `BROKER_FUZZ_TARGET` and `scripts/fuzz.sh` use.
    var name: String {
        switch self {
        case .http: return "http"
        case .publishBody: return "publish-body"
        case .webSocket: return "websocket"
        }
    }

    /// Runs `input`, the bytes after the target byte.
    func run(_ input: ArraySlice<UInt8>) {
        switch self {
        case .http:
            guard input.count >= 2 else { return }
            let control = PipelineRun.Control(rawValue: input[input.startIndex])
            let split = input[input.startIndex + 1]
            let pieces = PipelineRun.pieces(of: input.dropFirst(2), split: split)
            FuzzEntryPoints.httpRequests(Array(input.dropFirst(2)), pieces: pieces)
            PipelineRun.run(control: control, pieces: pieces)
        case .publishBody:
            let bytes = Array(input)
            FuzzEntryPoints.requestTarget(bytes)
            FuzzEntryPoints.publishBody(bytes)
        case .webSocket:
            guard input.count >= 3 else { return }
            let control = PipelineRun.Control(rawValue: input[input.startIndex])
            let split = input[input.startIndex + 1]
            let webSocket = WebSocketInput(flags: input[input.startIndex + 2], payload: input.dropFirst(3))
            for message in webSocket.messages { FuzzEntryPoints.webSocketMessage(Array(message)) }
            PipelineRun.run(
                control: control, upgrade: webSocket.upgradeRequest,
                pieces: PipelineRun.pieces(of: webSocket.frames[...], split: split))
        }
    }
}
