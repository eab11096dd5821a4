import Foundation

/// A test's scratch directory.
struct TemporaryDirectory {
    let url: URL

    func path(_ name: String) -> String {
        self.url.appendingPathComponent(name).path
    }
}

/// Runs `body` with a fresh directory, removed with everything in it when `body` returns or throws.
func withTemporaryDirectory(_ body: (TemporaryDirectory) throws -> Void) throws {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("event-store-\(UUID())")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    try body(TemporaryDirectory(url: url))
}
