import HTTPServer
import NIOCore
import NIOSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The certificate chain and private key the listener serves HTTPS with (and so `wss://` on `/api/ws`).
///
/// Both are PEM files, read once when the server starts into one `NIOSSLContext` that every connection shares:
/// replacing them takes a restart. The key must be unencrypted and belong to the chain's first certificate. One
/// file holding both the chain and the key may be named twice. Anything unusable is a `TLSSetupError` naming
/// the file.
public struct TLSFiles: Hashable, Sendable {
    /// The server's certificate, then the intermediates clients need to reach a root they trust.
    public var certificateChainPath: String
    /// The private key of the chain's first certificate (PKCS#8, or a traditional RSA or EC key).
    public var privateKeyPath: String

    public init(certificateChainPath: String, privateKeyPath: String) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
    }

    /// Reads and checks both files, and returns what `BrokerConfiguration.connectionSecurity` takes to serve HTTPS.
    ///
    /// Blocking file I/O: call it once, at start-up, off the event loops.
    public func makeConnectionSecurity() throws(TLSSetupError) -> TLSConnectionSecurity {
        TLSConnectionSecurity(context: try self.makeSSLContext())
    }
}

extension TLSFiles {
    /// Larger files are not a certificate chain or a key; refusing them keeps a wrong path from being read whole.
    static let maxFileBytes = 1024 * 1024
    /// How long a closing connection waits for the client's `close_notify` after sending its own (NIOSSL's default
    /// is 5 s). Nothing is lost by not waiting longer, and a stalled client, such as a slow consumer being cut, does
    /// not keep its buffers for long.
    static let shutdownTimeout = TimeAmount.seconds(1)

    /// Reads and checks both files and builds the context every connection shares.
    ///
    /// Blocking file I/O: call it once, at start-up, off the event loops.
    func makeSSLContext() throws(TLSSetupError) -> NIOSSLContext {
        let chainBytes = try Self.contents(of: self.certificateChainPath, .certificateChain)
        let keyBytes = try Self.contents(of: self.privateKeyPath, .privateKey)
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(chainBytes)
        } catch {
            throw TLSSetupError(
                .certificateChain, path: self.certificateChainPath,
                reason: Self.pemProblem(chainBytes, expecting: .certificateChain))
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw TLSSetupError(
                .privateKey, path: self.privateKeyPath, reason: Self.pemProblem(keyBytes, expecting: .privateKey))
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.shutdownTimeout = Self.shutdownTimeout
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch NIOSSLError.failedToLoadPrivateKey {
            // BoringSSL compares the key with the leaf certificate's public key when it is set.
            throw TLSSetupError(
                .privateKey, path: self.privateKeyPath,
                reason: "does not match the certificate in \(self.certificateChainPath)")
        } catch NIOSSLError.failedToLoadCertificate {
            throw TLSSetupError(
                .certificateChain, path: self.certificateChainPath,
                reason: "its first certificate cannot serve TLS (an unsupported key type or key usage)")
        } catch {
            throw TLSSetupError(
                .certificateChain, path: self.certificateChainPath, reason: "TLS cannot be set up with it: \(error)")
        }
    }

    /// Why `bytes`, which NIOSSL could not read, hold no PEM certificate or private key.
    static func pemProblem(_ bytes: [UInt8], expecting file: TLSSetupError.File) -> String {
        guard !bytes.isEmpty else { return "the file is empty" }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.contains("-----BEGIN ") else { return #"not PEM (no "-----BEGIN" line)"# }
        let hasKey = text.contains("PRIVATE KEY-----")
        let hasCertificate = text.contains("CERTIFICATE-----")
        if file == .certificateChain {
            return hasKey && !hasCertificate
                ? "holds a private key, not a certificate" : "holds no readable certificate"
        }
        if text.contains("ENCRYPTED") { return "the key is encrypted; the broker needs it unencrypted" }
        return hasCertificate && !hasKey ? "holds a certificate, not a private key" : "holds no readable private key"
    }

    /// The whole of the regular file at `path`, at most `maxFileBytes`.
    static func contents(of path: String, _ file: TLSSetupError.File) throws(TLSSetupError) -> [UInt8] {
        // Non-blocking, so a FIFO at the path cannot hang the start-up; regular files read the same either way.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw TLSSetupError(file, path: path, reason: Self.describe(errno: errno))
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw TLSSetupError(file, path: path, reason: Self.describe(errno: errno))
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw TLSSetupError(file, path: path, reason: "is a directory")
        default: throw TLSSetupError(file, path: path, reason: "is not a regular file")
        }
        guard info.st_size <= Self.maxFileBytes else {
            throw TLSSetupError(
                file, path: path, reason: "is \(info.st_size) bytes; a certificate chain or key is far smaller")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var count = 0
        while count < bytes.count {
            let received = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + count, $0.count - count) }
            if received > 0 {
                count += received
            } else if received == 0 {
                break
            } else if errno != EINTR {
                throw TLSSetupError(file, path: path, reason: Self.describe(errno: errno))
            }
        }
        bytes.removeSubrange(count...)
        return bytes
    }

    private static func describe(errno code: Int32) -> String {
        switch code {
        case ENOENT: "no such file"
        case EACCES, EPERM: "permission denied (not readable by this user)"
        default: String(cString: strerror(code)).lowercased()
        }
    }
}
