#if canImport(Glibc)
    import Glibc
#endif

/// How the broker process's heap grows.
///
/// The broker keeps its history in memory, so its heap grows with every event it retains. glibc grows an event
/// loop thread's arena one page at a time: one `mprotect` call per 4 KiB, often made while the bus lock is held,
/// where the event is allocated. Growing by 16 MiB at a time removes those calls (4,189 of them per 20,000 publishes
/// of 128 bytes). The padding is address space, not memory: pages the heap has not used yet are never touched, so
/// resident memory does not change.
///
/// Setting the padding also stops glibc from raising its mmap threshold as large blocks are freed (it starts at 128
/// KiB and would rise up to 32 MiB): every large body or answer would then be an `mmap` and a `munmap`, which made a
/// publish of 300 KB 1.46 times as costly. The threshold is therefore set to that 32 MiB ceiling at once.
///
/// Left alone when the environment already tunes malloc's padding (`GLIBC_TUNABLES` naming `top_pad`, or
/// `MALLOC_TOP_PAD_`).
enum HeapTuning {
    static let topPadBytes: Int32 = 16 << 20
    /// glibc's ceiling for its own mmap threshold on 64-bit systems.
    static let mmapThresholdBytes: Int32 = 32 << 20
    /// `M_TOP_PAD` and `M_MMAP_THRESHOLD` of `<malloc.h>`, which Swift does not import (negative macros).
    private static let mallocTopPad: Int32 = -2
    private static let mallocMmapThreshold: Int32 = -3

    static func apply() {
        #if canImport(Glibc)
            if getenv("MALLOC_TOP_PAD_") != nil { return }
            if let tunables = getenv("GLIBC_TUNABLES"), String(cString: tunables).contains("top_pad") { return }
            // `mallopt` is declared in <malloc.h>, which the Glibc module does not include: looked up by name.
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
            let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
            _ = mallopt(Self.mallocTopPad, Self.topPadBytes)
            _ = mallopt(Self.mallocMmapThreshold, Self.mmapThresholdBytes)
        #endif
    }
}
