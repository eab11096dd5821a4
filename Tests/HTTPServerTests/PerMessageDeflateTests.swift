import NIOCore
import Testing

@testable import HTTPServer

/// RFC 7692 `permessage-deflate`: the handshake negotiation.
@Suite struct PerMessageDeflateTests {
    // MARK: - Negotiation

    /// One `Sec-WebSocket-Extensions` request and the agreement the server answers with.
    struct NegotiationCase: CustomTestStringConvertible, Sendable {
        let name: String
        let headers: [String]
        let response: String?
        var parameters = PerMessageDeflate.Parameters()

        var testDescription: String { self.name }
    }

    static let negotiationCases: [NegotiationCase] = [
        NegotiationCase(
            name: "plain offer", headers: ["permessage-deflate"],
            response: "permessage-deflate; server_no_context_takeover"),
        NegotiationCase(
            name: "client_max_window_bits without a value is answered with 15",
            headers: ["permessage-deflate; client_max_window_bits"],
            response: "permessage-deflate; server_no_context_takeover; client_max_window_bits=15"),
        NegotiationCase(
            name: "client_max_window_bits=10 is echoed", headers: ["permessage-deflate; client_max_window_bits=10"],
            response: "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
            parameters: .init(clientMaxWindowBits: 10)),
        NegotiationCase(
            name: "server_max_window_bits=10 is honoured", headers: ["permessage-deflate; server_max_window_bits=10"],
            response: "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
            parameters: .init(serverMaxWindowBits: 10)),
        NegotiationCase(
            name: "server_max_window_bits=8 is answered with 8",
            headers: ["permessage-deflate; server_max_window_bits=8"],
            response: "permessage-deflate; server_no_context_takeover; server_max_window_bits=8",
            parameters: .init(serverMaxWindowBits: 8)),
        NegotiationCase(
            name: "a quoted value is unquoted", headers: [#"permessage-deflate; server_max_window_bits="12""#],
            response: "permessage-deflate; server_no_context_takeover; server_max_window_bits=12",
            parameters: .init(serverMaxWindowBits: 12)),
        NegotiationCase(
            name: "client_no_context_takeover is echoed",
            headers: ["permessage-deflate; client_no_context_takeover; server_no_context_takeover"],
            response: "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            parameters: .init(clientNoContextTakeover: true)),
        NegotiationCase(
            name: "every parameter at once, names in any case",
            headers: [
                "PerMessage-Deflate;Client_Max_Window_Bits=9 ; server_max_window_bits=11;client_no_context_takeover"
            ],
            response: "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
                + "; server_max_window_bits=11; client_max_window_bits=9",
            parameters: .init(clientNoContextTakeover: true, serverMaxWindowBits: 11, clientMaxWindowBits: 9)),
        NegotiationCase(
            name: "an unknown parameter is rejected, then the second offer in the header chosen",
            headers: ["permessage-deflate; x_extra_bits=3, permessage-deflate; client_max_window_bits"],
            response: "permessage-deflate; server_no_context_takeover; client_max_window_bits=15"),
        NegotiationCase(
            name: "a rejected offer on one header line, an accepted one on the next",
            headers: ["permessage-deflate; server_max_window_bits", "permessage-deflate; client_no_context_takeover"],
            response: "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            parameters: .init(clientNoContextTakeover: true)),
        NegotiationCase(
            name: "a comma inside quotes does not start an offer",
            headers: [#"permessage-deflate; x="a, permessage-deflate", permessage-deflate; server_max_window_bits=9"#],
            response: "permessage-deflate; server_no_context_takeover; server_max_window_bits=9",
            parameters: .init(serverMaxWindowBits: 9)),
        NegotiationCase(
            name: "a duplicate parameter is rejected",
            headers: ["permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"], response: nil),
        NegotiationCase(
            name: "a duplicate flag is rejected",
            headers: ["permessage-deflate; client_no_context_takeover; client_no_context_takeover"], response: nil),
        NegotiationCase(
            name: "window bits 7 is rejected", headers: ["permessage-deflate; server_max_window_bits=7"],
            response: nil),
        NegotiationCase(
            name: "window bits 16 is rejected", headers: ["permessage-deflate; client_max_window_bits=16"],
            response: nil),
        NegotiationCase(
            name: "window bits with a leading zero is rejected",
            headers: ["permessage-deflate; server_max_window_bits=09"], response: nil),
        NegotiationCase(
            name: "server_max_window_bits without a value is rejected",
            headers: ["permessage-deflate; server_max_window_bits"], response: nil),
        NegotiationCase(
            name: "a flag with a value is rejected",
            headers: ["permessage-deflate; server_no_context_takeover=1"], response: nil),
        NegotiationCase(
            name: "a quoted value that is not a token is rejected",
            headers: [#"permessage-deflate; server_max_window_bits="1 0""#], response: nil),
        NegotiationCase(
            name: "a malformed offer is rejected", headers: ["permessage-deflate; ; server_max_window_bits=10"],
            response: nil),
        NegotiationCase(name: "no header", headers: [], response: nil),
        NegotiationCase(name: "an empty header", headers: ["", " , "], response: nil),
        NegotiationCase(
            name: "other extension names are ignored",
            headers: ["x-webkit-deflate-frame; no_context_takeover, deflate-frame", "permessage-deflatex"],
            response: nil),
        NegotiationCase(
            name: "another extension before the offer is skipped",
            headers: ["x-webkit-deflate-frame; max_window_bits=10, permessage-deflate"],
            response: "permessage-deflate; server_no_context_takeover"),
    ]

    @Test(arguments: Self.negotiationCases)
    func negotiatesTheFirstAcceptableOffer(_ testCase: NegotiationCase) {
        let agreement = PerMessageDeflate.negotiate(offers: testCase.headers)
        #expect(agreement?.responseHeaderValue == testCase.response)
        if testCase.response != nil {
            #expect(agreement?.parameters == testCase.parameters)
        }
    }
}
