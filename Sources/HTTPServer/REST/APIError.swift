import EventBroker
import NIOCore
import NIOHTTP1

/// An error answered to an HTTP client: a status and `{"error": {"code": …, "message": …}}` (see openapi.yaml).
struct APIError: Error, Hashable, Sendable {
    let status: HTTPResponseStatus
    let code: String
    let message: String
    var headers: [(String, String)] = []
    /// Whether the connection is closed after the answer (the request body could not be read to its end).
    var closesConnection = false

    init(_ status: HTTPResponseStatus, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    static func == (lhs: APIError, rhs: APIError) -> Bool {
        lhs.status == rhs.status && lhs.code == rhs.code && lhs.message == rhs.message
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(self.code)
        hasher.combine(self.message)
    }

    var jsonBody: String {
        "{\"error\":{\"code\":\(JSONValue.quoted(self.code)),\"message\":\(JSONValue.quoted(self.message))}}"
    }

    static func invalidField(_ name: String, _ expectation: String) -> APIError {
        APIError(.badRequest, "invalid_field", "'\(name)' \(expectation).")
    }

    static func invalidParameter(_ name: String, _ expectation: String) -> APIError {
        APIError(.badRequest, "invalid_parameter", "Query parameter '\(name)' \(expectation).")
    }

    static func notFound(_ path: String) -> APIError {
        APIError(.notFound, "not_found", "No endpoint at '\(path.prefix(200))'. See openapi.yaml for the API.")
    }

    static func methodNotAllowed(_ method: HTTPMethod, allowed: [HTTPMethod]) -> APIError {
        let allow = allowed.map(\.rawValue).joined(separator: ", ")
        var error = APIError(
            .methodNotAllowed, "method_not_allowed", "\(method.rawValue) is not allowed here; use \(allow).")
        error.headers = [("Allow", allow)]
        return error
    }

    static func payloadTooLarge(limit: Int) -> APIError {
        var error = APIError(
            .payloadTooLarge, "payload_too_large", "The request body exceeds the limit of \(limit) bytes.")
        error.closesConnection = true
        return error
    }

    /// The answer to a failed publish future: its `BrokerError`, or a `500`.
    init(publishFailure error: any Error) {
        if let error = error as? BrokerError {
            self.init(error)
        } else if let error = error as? APIError {
            self = error
        } else {
            self = .internalError
        }
    }

    static let internalError = APIError(
        .internalServerError, "internal_error", "The broker failed to handle the request.")

    /// The HTTP form of a refused token (`401`, with the RFC 6750 challenge) or of a topic the token does not grant
    /// (`403`).
    init(_ error: AuthorizationError) {
        switch error.code {
        case .forbidden:
            self.init(.forbidden, error.code.description, error.message)
            self.headers = [("WWW-Authenticate", #"Bearer realm="eventbroker", error="insufficient_scope""#)]
        case .missingToken:
            self.init(.unauthorized, error.code.description, error.message)
            self.headers = [("WWW-Authenticate", #"Bearer realm="eventbroker""#)]
        default:
            self.init(.unauthorized, error.code.description, error.message)
            self.headers = [("WWW-Authenticate", #"Bearer realm="eventbroker", error="invalid_token""#)]
        }
    }

    /// The HTTP form of a bus error.
    init(_ error: BrokerError) {
        let status: HTTPResponseStatus
        switch error.code {
        case .clientNotFound, .topicNotFound: status = .notFound
        case .shuttingDown, .storeUnavailable: status = .serviceUnavailable
        default: status = .badRequest
        }
        self.init(status, error.code.description, error.message)
        if error.code == .shuttingDown || error.code == .storeUnavailable { self.headers = [("Retry-After", "1")] }
    }
}
