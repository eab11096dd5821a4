import NIOCore
import NIOHTTP1

/// Answers a request the HTTP parser could not read with a JSON error and closes the connection: `431` for a head
/// over the parser's limit, `400` otherwise. Other errors close the connection.
///
/// Like NIO's `HTTPServerProtocolErrorHandler`, it watches outgoing parts so it never writes an error into the
/// middle of a response.
final class HTTPErrorResponder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var hasUnterminatedResponse = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        if !self.hasUnterminatedResponse {
            let apiError: APIError
            switch parserError {
            case .headerOverflow:
                apiError = APIError(.requestHeaderFieldsTooLarge, "headers_too_large", "The request head is too large.")
            default:
                apiError = APIError(.badRequest, "bad_request", "The request is not valid HTTP/1.1 (\(parserError)).")
            }
            let body = ByteBuffer(string: apiError.jsonBody)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.readableBytes))
            headers.add(name: "Connection", value: "close")
            context.write(
                Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: apiError.status, headers: headers))),
                promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.close(promise: nil)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch Self.unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200:
            self.hasUnterminatedResponse = true
        case .end:
            self.hasUnterminatedResponse = false
        default:
            break
        }
        context.write(data, promise: promise)
    }
}

@available(*, unavailable)
extension HTTPErrorResponder: Sendable {}
