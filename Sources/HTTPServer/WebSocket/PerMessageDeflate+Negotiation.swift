extension PerMessageDeflate {
    /// The server's answer to an accepted `permessage-deflate` offer.
    struct Agreement: Hashable, Sendable {
        /// The value of the `Sec-WebSocket-Extensions` response header, e.g.
        /// `permessage-deflate; server_no_context_takeover; client_max_window_bits=15`.
        var responseHeaderValue: String
        /// What the codec must honour on this connection.
        var parameters: Parameters
    }

    /// Picks the first acceptable `permessage-deflate` offer of a handshake request. Pure: no I/O.
    ///
    /// Offers are read in order, across all header lines, with the RFC 6455 §9.1 grammar
    /// (`name *( ";" param [ "=" ( token / quoted-string ) ] )`, comma-separated, names compared case-insensitively).
    /// Other extensions are ignored. An offer is skipped (RFC 7692 §5, §7.1) when it is malformed, has a parameter
    /// this extension does not define, names a parameter twice, or has an invalid value. The server's policy:
    /// - `server_no_context_takeover` is always in the response (so one compressed frame serves every connection);
    /// - `client_no_context_takeover` is echoed when offered;
    /// - `server_max_window_bits=N` (8…15) is echoed and honoured; for 8 the compressor runs zlib with 9, whose
    ///   matches never reach back more than 250 bytes (see `PerMessageDeflateCompressor`);
    /// - `client_max_window_bits=N` is echoed, and the inflater sized for it; offered without a value it is answered
    ///   with 15; not offered, it is not in the response (RFC 7692 §7.1.2.2).
    ///
    /// - Parameters:
    ///   - headerValues: the values of every `Sec-WebSocket-Extensions` header line of the request, in order.
    /// - Returns: the agreement, or `nil` when no acceptable `permessage-deflate` offer was made.
    static func negotiate(offers headerValues: [String]) -> Agreement? {
        for headerValue in headerValues {
            for case let offer? in Self.parseExtensionList(headerValue)
            where offer.name.lowercased() == Self.extensionName {
                if let agreement = Self.accept(offer) {
                    return agreement
                }
            }
        }
        return nil
    }

    /// One element of a `Sec-WebSocket-Extensions` list, values unquoted.
    private struct ExtensionOffer {
        var name: String
        var parameters: [(name: String, value: String?)]
    }

    /// A `client_max_window_bits` as offered: the parameter is allowed without a value.
    private enum OfferedClientWindow {
        case absent
        case withoutValue
        case bits(Int)
    }

    /// Validates one `permessage-deflate` offer against RFC 7692 §7.1 and applies the server's policy.
    private static func accept(_ offer: ExtensionOffer) -> Agreement? {
        var seen: Set<String> = []
        var clientNoContextTakeover = false
        var serverMaxWindowBits: Int?
        var clientWindow = OfferedClientWindow.absent
        for (name, value) in offer.parameters {
            let name = name.lowercased()
            guard seen.insert(name).inserted else { return nil }
            switch name {
            case "server_no_context_takeover":
                guard value == nil else { return nil }
            case "client_no_context_takeover":
                guard value == nil else { return nil }
                clientNoContextTakeover = true
            case "server_max_window_bits":
                guard let value, let bits = Self.windowBits(value) else { return nil }
                serverMaxWindowBits = bits
            case "client_max_window_bits":
                if let value {
                    guard let bits = Self.windowBits(value) else { return nil }
                    clientWindow = .bits(bits)
                } else {
                    clientWindow = .withoutValue
                }
            default:
                return nil
            }
        }

        var response = Self.extensionName + "; server_no_context_takeover"
        var parameters = Parameters(clientNoContextTakeover: clientNoContextTakeover)
        if clientNoContextTakeover {
            response += "; client_no_context_takeover"
        }
        if let serverMaxWindowBits {
            response += "; server_max_window_bits=\(serverMaxWindowBits)"
            parameters.serverMaxWindowBits = serverMaxWindowBits
        }
        switch clientWindow {
        case .absent:
            break
        case .withoutValue:
            response += "; client_max_window_bits=15"
        case .bits(let bits):
            response += "; client_max_window_bits=\(bits)"
            parameters.clientMaxWindowBits = bits
        }
        return Agreement(responseHeaderValue: response, parameters: parameters)
    }

    /// A window size value: a decimal 8…15 without leading zeroes (RFC 7692 §7.1.2).
    private static func windowBits(_ value: String) -> Int? {
        guard let first = value.utf8.first, first != UInt8(ascii: "0"), value.utf8.count <= 2,
            value.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let bits = Int(value), Self.windowBitsRange.contains(bits)
        else { return nil }
        return bits
    }
}

// MARK: - Parsing the header (RFC 6455 §9.1)

extension PerMessageDeflate {
    private static let comma = UInt8(ascii: ",")
    private static let semicolon = UInt8(ascii: ";")
    private static let equals = UInt8(ascii: "=")
    private static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")

    /// Splits one header value into its offers; a malformed element becomes `nil` and parsing resumes after the
    /// next comma outside quotes.
    private static func parseExtensionList(_ headerValue: String) -> [ExtensionOffer?] {
        let bytes = Array(headerValue.utf8)
        var index = 0
        var offers: [ExtensionOffer?] = []
        while true {
            while index < bytes.count, bytes[index] == Self.comma || Self.isWhitespace(bytes[index]) {
                index += 1
            }
            guard index < bytes.count else { return offers }
            let elementStart = index
            if let offer = Self.parseOffer(bytes, &index) {
                offers.append(offer)
            } else {
                offers.append(nil)
                index = Self.endOfElement(bytes, from: elementStart)
            }
        }
    }

    /// `token *( OWS ";" OWS token [ OWS "=" OWS ( token / quoted-string ) ] ) OWS`, ending at a comma or the end.
    private static func parseOffer(_ bytes: [UInt8], _ index: inout Int) -> ExtensionOffer? {
        guard let name = Self.token(bytes, &index) else { return nil }
        var offer = ExtensionOffer(name: name, parameters: [])
        Self.skipWhitespace(bytes, &index)
        while index < bytes.count, bytes[index] == Self.semicolon {
            index += 1
            Self.skipWhitespace(bytes, &index)
            guard let parameterName = Self.token(bytes, &index) else { return nil }
            Self.skipWhitespace(bytes, &index)
            var value: String?
            if index < bytes.count, bytes[index] == Self.equals {
                index += 1
                Self.skipWhitespace(bytes, &index)
                if index < bytes.count, bytes[index] == Self.quote {
                    guard let unquoted = Self.quotedString(bytes, &index) else { return nil }
                    value = unquoted
                } else {
                    guard let token = Self.token(bytes, &index) else { return nil }
                    value = token
                }
                Self.skipWhitespace(bytes, &index)
            }
            offer.parameters.append((parameterName, value))
        }
        guard index == bytes.count || bytes[index] == Self.comma else { return nil }
        return offer
    }

    /// A non-empty run of token characters, or `nil` (index unchanged).
    private static func token(_ bytes: [UInt8], _ index: inout Int) -> String? {
        let start = index
        while index < bytes.count, bytes[index].isHTTPTokenCharacter {
            index += 1
        }
        guard index > start else { return nil }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// A quoted-string starting at `index`, unescaped; `nil` when unterminated or when the unescaped value is not a
    /// token, as RFC 6455 §9.1 requires.
    private static func quotedString(_ bytes: [UInt8], _ index: inout Int) -> String? {
        var value: [UInt8] = []
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == Self.quote {
                guard !value.isEmpty, value.allSatisfy(\.isHTTPTokenCharacter) else { return nil }
                return String(decoding: value, as: UTF8.self)
            }
            if byte == Self.backslash {
                guard index < bytes.count else { return nil }
                value.append(bytes[index])
                index += 1
            } else {
                value.append(byte)
            }
        }
        return nil
    }

    /// The index of the comma ending the element that starts at `start` (or the end), skipping quoted commas.
    private static func endOfElement(_ bytes: [UInt8], from start: Int) -> Int {
        var index = start
        var isQuoted = false
        while index < bytes.count {
            let byte = bytes[index]
            if isQuoted, byte == Self.backslash {
                index += 2
                continue
            }
            if byte == Self.quote {
                isQuoted.toggle()
            } else if byte == Self.comma, !isQuoted {
                return index
            }
            index += 1
        }
        return bytes.count
    }

    private static func skipWhitespace(_ bytes: [UInt8], _ index: inout Int) {
        while index < bytes.count, Self.isWhitespace(bytes[index]) {
            index += 1
        }
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }
}
