import EventBroker

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Decoding of the unpadded base64url parts of a compact JWS (RFC 7515 §2), on top of Foundation's base64.
///
/// jwt-kit keeps its own base64url helpers `package`-internal, so the verifier translates the alphabet here.
/// Anything outside `A-Z a-z 0-9 - _` (padding, `+`, `/`, whitespace) makes a part invalid.
enum Base64URL {
    static func decode(_ part: ArraySlice<UInt8>) -> Data? {
        guard part.count % 4 != 1 else { return nil }
        var base64 = [UInt8]()
        base64.reserveCapacity(part.count + 3)
        for byte in part {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                base64.append(byte)
            case UInt8(ascii: "-"):
                base64.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"):
                base64.append(UInt8(ascii: "/"))
            default:
                return nil
            }
        }
        while base64.count % 4 != 0 {
            base64.append(UInt8(ascii: "="))
        }
        return Data(base64Encoded: Data(base64))
    }
}
