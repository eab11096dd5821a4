#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The target `BROKER_FUZZ_TARGET` restricts a run to (`http`, `publish-body` or `websocket`); nil runs every
/// target.
private let onlyTarget: FuzzTarget? = {
    guard let name = getenv("BROKER_FUZZ_TARGET").map({ String(cString: $0) }), !name.isEmpty else { return nil }
    guard let target = FuzzTarget.allCases.first(where: { $0.name == name }) else {
        fatalError("BROKER_FUZZ_TARGET=\(name): use \(FuzzTarget.allCases.map(\.name).joined(separator: ", ")).")
    }
    return target
}()

/// libFuzzer's entry point, and the reproducer's: runs one input (see `FuzzTarget` for its layout).
///
/// Returns 0, or -1 for an input of another target than `BROKER_FUZZ_TARGET`, which libFuzzer then keeps out of
/// the corpus: each target's run keeps inputs whose first byte names it, so each saved input replays on its own.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: start, count: count))
    guard let target = FuzzTarget(input: input) else { return 0 }
    if let onlyTarget, onlyTarget != target { return -1 }
    target.run(input.dropFirst())
    return 0
}
