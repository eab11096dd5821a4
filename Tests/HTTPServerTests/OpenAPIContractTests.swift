import Foundation
import Testing

@testable import HTTPServer

/// openapi.yaml is the REST contract: every routed path and method is in it, and nothing else is.
@Suite struct OpenAPIContractTests {
    static func specification() throws -> String {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("openapi.yaml")
            if FileManager.default.fileExists(atPath: candidate.path) {
                return try String(contentsOf: candidate, encoding: .utf8)
            }
            directory = directory.deletingLastPathComponent()
        }
        throw CocoaError(.fileNoSuchFile)
    }

    /// `path METHOD` pairs under `paths:` (paths at two spaces, methods at four).
    static func documentedOperations(_ yaml: String) -> Set<String> {
        var operations: Set<String> = []
        var inPaths = false
        var currentPath: String?
        let methods: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty {
                inPaths = line.hasPrefix("paths:")
                continue
            }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                currentPath = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), let path = currentPath {
                let key = line.dropFirst(4).prefix { $0 != ":" }
                if methods.contains(String(key)) { operations.insert("\(path) \(key.uppercased())") }
            }
        }
        return operations
    }

    @Test func everyRoutedPathAndMethodIsDocumentedAndNothingElse() throws {
        let documented = Self.documentedOperations(try Self.specification())
        var routed: Set<String> = []
        for route in Route.allCases {
            for method in route.allowedMethods { routed.insert("\(route.pathTemplate) \(method.rawValue)") }
        }
        #expect(
            routed == documented,
            "only routed: \(routed.subtracting(documented)); only documented: \(documented.subtracting(routed))")
    }

    @Test func specificationIsValidOpenAPI31() throws {
        var root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: root.appendingPathComponent("openapi.yaml").path) {
            root = root.deletingLastPathComponent()
        }
        let validator = Process()
        validator.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        validator.arguments = ["python3", root.appendingPathComponent("scripts/validate-openapi.py").path]
        validator.currentDirectoryURL = root
        let output = Pipe()
        validator.standardOutput = output
        validator.standardError = output
        try validator.run()
        validator.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(validator.terminationStatus == 0, "\(text)")
        #expect(text.contains("valid OpenAPI 3.1"))
    }

    @Test func everyErrorCodeTheServerUsesIsDocumented() throws {
        let yaml = try Self.specification()
        let codes = [
            "invalid_json", "invalid_field", "missing_field", "invalid_topic", "invalid_selector", "reserved_topic",
            "too_many_topics", "invalid_event", "empty_data", "invalid_data", "invalid_parameter", "invalid_header",
            "bad_request", "not_found", "client_not_found", "topic_not_found", "method_not_allowed", "request_timeout",
            "payload_too_large", "unsupported_media_type", "headers_too_large", "shutting_down", "internal_error",
            "server_full", "too_many_connections", "rate_limited", "forbidden_origin", "missing_token",
            "malformed_token", "unsecured_token", "algorithm_not_allowed", "invalid_signature", "token_expired",
            "token_not_yet_valid", "wrong_audience", "invalid_claim", "forbidden", "store_unavailable",
        ]
        for code in codes { #expect(yaml.contains(code), "\(code) is not in openapi.yaml") }
    }
}
