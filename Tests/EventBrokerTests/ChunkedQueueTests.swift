import Testing

@testable import EventBroker

/// The history timeline's queue: first in, first out across chunk boundaries, releasing what it removes.
@Suite struct ChunkedQueueTests {
    private final class Box {
        let value: Int
        init(_ value: Int) { self.value = value }
    }

    @Test(arguments: [
        0, 1, ChunkedQueue<Int>.chunkCapacity - 1, ChunkedQueue<Int>.chunkCapacity,
        3 * ChunkedQueue<Int>.chunkCapacity + 7,
    ])
    func keepsOrderAndCountAcrossChunks(_ total: Int) {
        var queue = ChunkedQueue<Int>()
        for value in 0..<total { queue.append(value) }
        #expect(queue.count == total)
        #expect(Array(queue) == Array(0..<total))
        #expect(queue.first == (total == 0 ? nil : 0))
        var popped: [Int] = []
        while let value = queue.popFirst() { popped.append(value) }
        #expect(popped == Array(0..<total))
        #expect(queue.isEmpty && queue.first == nil && Array(queue).isEmpty)
    }

    @Test func readsTheOldestElementInPlaceAcrossChunkBoundaries() {
        let capacity = ChunkedQueue<Int>.chunkCapacity
        var queue = ChunkedQueue<Int>()
        #expect(queue.readFirst { $0 } == nil)
        for value in 0..<(capacity + 2) { queue.append(value) }
        #expect(queue.readFirst { $0 * 10 } == 0)
        for _ in 0..<capacity { queue.popFirst() }
        // The first chunk is gone: the oldest is now the second chunk's first element.
        #expect(queue.readFirst { $0 * 10 } == capacity * 10)
        queue.popFirst()
        queue.popFirst()
        #expect(queue.readFirst { $0 } == nil)
    }

    @Test func interleavesAppendsAndRemovalsLikeAQueue() {
        let capacity = ChunkedQueue<Int>.chunkCapacity
        var queue = ChunkedQueue<Int>()
        var model: [Int] = []
        var next = 0
        // Appends run ahead of removals, then removals run alone: the queue grows and shrinks across chunk boundaries.
        for step in 0..<(6 * capacity) {
            let appends = step < 4 * capacity ? 2 : 0
            for _ in 0..<appends {
                queue.append(next)
                model.append(next)
                next += 1
            }
            if step % 3 != 0 || appends == 0 {
                #expect(queue.popFirst() == (model.isEmpty ? nil : model.removeFirst()))
            }
            #expect(queue.count == model.count)
            #expect(queue.first == model.first)
        }
        #expect(Array(queue) == model)
        queue.append(-1)
        #expect(Array(queue) == model + [-1])
    }

    @Test func releasesAnElementWhenItIsRemoved() {
        var queue = ChunkedQueue<Box>()
        weak var firstBox: Box?
        do {
            let box = Box(1)
            firstBox = box
            queue.append(box)
            queue.append(Box(2))
        }
        #expect(firstBox != nil)
        #expect(queue.popFirst()?.value == 1)
        #expect(firstBox == nil, "the queue still holds a removed element")
        #expect(queue.first?.value == 2)
    }
}
