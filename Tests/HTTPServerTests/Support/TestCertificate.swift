import BrokerTLS
import Foundation

/// A self-signed certificate for `127.0.0.1` and `localhost`, made by `/usr/bin/openssl` in a temporary directory
/// that `remove()` deletes.
final class TestCertificate {
    let directory: URL
    /// The certificate, which is also its own CA: give it to clients as the trust root (`curl --cacert`).
    let certificatePath: String
    let keyPath: String

    init() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("broker-tls-\(UUID())")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        self.certificatePath = self.directory.appendingPathComponent("cert.pem").path
        self.keyPath = self.directory.appendingPathComponent("key.pem").path
        let result = try ExternalCommand.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout", self.keyPath, "-out", self.certificatePath,
            ])
        guard result.status == 0 else {
            self.remove()
            throw ExternalCommand.Failed(description: "openssl req failed: \(result.errors)")
        }
    }

    var files: TLSFiles {
        TLSFiles(certificateChainPath: self.certificatePath, privateKeyPath: self.keyPath)
    }

    /// A path in the certificate's directory (removed with it).
    func path(_ name: String) -> String {
        self.directory.appendingPathComponent(name).path
    }

    /// Writes `text` to `name` in the certificate's directory and returns its path.
    func write(_ text: String, to name: String) throws -> String {
        let path = self.path(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func remove() {
        try? FileManager.default.removeItem(at: self.directory)
    }
}

/// Runs a command line tool to the end and collects what it printed.
enum ExternalCommand {
    struct Failed: Error, CustomStringConvertible {
        let description: String
    }

    struct Result {
        let status: Int32
        let output: String
        let errors: String
    }

    /// Runs `executable` with `arguments`; a tool that could run for long must bound itself (`curl --max-time`).
    static func run(_ executable: String, _ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        return Self.finish(process, output: output, errors: errors)
    }

    /// Kills `process` if it still runs, and waits for it. SIGKILL, because a child of the test process inherits its
    /// blocked signals, SIGTERM among them.
    static func stop(_ process: Process) {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Reads a started process's output to its end, then waits for it to exit.
    static func finish(_ process: Process, output: Pipe, errors: Pipe) -> Result {
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
            errors: String(decoding: errorData, as: UTF8.self))
    }
}

#if canImport(Glibc)
    import Glibc
#endif
