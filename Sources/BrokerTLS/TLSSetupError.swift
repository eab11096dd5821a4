/// A TLS certificate chain or private key the server cannot use, naming the file and saying why.
///
/// `TLSFiles.makeConnectionSecurity()` throws it, before the server binds, so a bad file stops the start-up with one line:
/// ```
/// TLS private key /etc/broker/key.pem: no such file
/// TLS certificate chain /etc/broker/cert.pem: not PEM (no "-----BEGIN" line)
/// TLS private key /etc/broker/key.pem: does not match the certificate in /etc/broker/cert.pem
/// ```
public struct TLSSetupError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Which of the two files is at fault.
    public struct File: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case certificateChain
            case privateKey
        }

        private let base: Base

        /// The file `TLSFiles.certificateChainPath` names.
        public static let certificateChain = File(base: .certificateChain)
        /// The file `TLSFiles.privateKeyPath` names.
        public static let privateKey = File(base: .privateKey)

        public var description: String {
            switch self.base {
            case .certificateChain: "certificate chain"
            case .privateKey: "private key"
            }
        }
    }

    public let file: File
    public let path: String
    /// What is wrong with the file, in a few words.
    public let reason: String

    public init(_ file: File, path: String, reason: String) {
        self.file = file
        self.path = path
        self.reason = reason
    }

    public var description: String { "TLS \(self.file) \(self.path): \(self.reason)" }
}
