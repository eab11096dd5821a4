#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `broker-fuzz`'s entry point: libFuzzer's driver in a fuzzing build, a replayer of saved inputs otherwise.
///
/// Built with `-sanitize=fuzzer -DFUZZING` (see `scripts/fuzz.sh`), `main` hands the arguments to libFuzzer's
/// `LLVMFuzzerRunDriver`, which fuzzes `LLVMFuzzerTestOneInput` (`fuzz(_:_:)`) and takes libFuzzer's usual flags.
/// The `@main` stays in that build because SwiftPM renames an executable's entry point (`main` is linked as
/// `broker_fuzz_main`), so libFuzzer's own `main` would never be the process's.
///
/// In a plain build it replays inputs: each file given, and each file in each directory given, through the same
/// entry point. A crash reproduces as the same trap; `BROKER_FUZZ_VERBOSE=1` prints what the server wrote.
/// ```
/// swift run broker-fuzz Tests/Fuzz/seeds/http Tests/Fuzz/crashes/some-crash
/// ```
@main
struct BrokerFuzz {
    static func main() {
        #if FUZZING
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            // A closure, not `fuzz` itself: taking the `@_cdecl` function as a C pointer here would emit its C
            // symbol a second time, in this file.
            exit(runLibFuzzer(&argc, &argv) { start, count in fuzz(start, count) })
        #else
            Self.replay(CommandLine.arguments.dropFirst())
        #endif
    }

    static func replay(_ paths: ArraySlice<String>) {
        guard !paths.isEmpty else {
            print("usage: broker-fuzz FILE_OR_DIRECTORY...   (replays fuzz inputs; see scripts/fuzz.sh)")
            exit(2)
        }
        var count = 0
        for path in paths {
            for file in Self.files(at: path) {
                guard let bytes = Self.read(file) else {
                    print("cannot read \(file)")
                    exit(1)
                }
                print("Running \(file) (\(bytes.count) bytes)")
                _ = bytes.withUnsafeBufferPointer { buffer in
                    fuzz(buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!, buffer.count)
                }
                count += 1
            }
        }
        print("Executed \(count) inputs without a crash")
    }

    /// `path` itself, or the regular files in it (sorted, not recursive) when it is a directory.
    static func files(at path: String) -> [String] {
        guard let directory = opendir(path) else { return [path] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if !name.hasPrefix(".") { names.append(path + "/" + name) }
        }
        return names.sorted()
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let read = fread(&chunk, 1, chunk.count, file)
            bytes += chunk[..<read]
            if read < chunk.count { break }
        }
        return bytes
    }
}

#if FUZZING
    /// libFuzzer's `int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *, size_t))`:
    /// parses libFuzzer's flags and runs the fuzzing loop (pointer and integer arguments pass the same way under
    /// Swift's and C's calling conventions, so no C module is needed to declare it).
    @_silgen_name("LLVMFuzzerRunDriver")
    func runLibFuzzer(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
    ) -> CInt
#endif
