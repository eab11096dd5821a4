import Testing

@testable import broker_cli

#if canImport(Glibc)
    import Glibc
#endif

/// `serve`'s malloc settings: the arena padding, and an mmap threshold that keeps large blocks on the heap.
@Suite struct HeapTuningTests {
    /// Padding the heap stops glibc from raising its mmap threshold (128 KiB at start), so without a threshold of
    /// its own every block of 128 KiB or more, a large body or answer, was an `mmap` and a `munmap`: a 300 KB
    /// publish cost 1.46 times as much CPU.
    @Test func aLargeBlockComesFromTheHeapNotFromItsOwnMapping() throws {
        #if canImport(Glibc)
            HeapTuning.apply()
            for size in [200 * 1024, 1024 * 1024, 8 * 1024 * 1024] {
                let block = try #require(malloc(size))
                defer { free(block) }
                // glibc marks a chunk that has a mapping of its own with bit 1 (IS_MMAPPED) of the size word in front
                // of the block.
                let sizeWord = block.load(fromByteOffset: -MemoryLayout<Int>.size, as: Int.self)
                #expect(sizeWord & 0x2 == 0, "a block of \(size) bytes was mapped on its own")
            }
        #endif
    }
}
