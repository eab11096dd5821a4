/// A first-in, first-out queue that grows one chunk at a time: appending never moves what it already holds.
///
/// A ring buffer that doubles copies every element when it grows, retaining each one and releasing the old copy,
/// which touches the memory of everything it references: for the history's timeline, every retained event. Here a
/// full chunk stays where it is and a new one is added; a chunk whose elements were all removed is dropped. A
/// removed element is released at once.
struct ChunkedQueue<Element>: Sequence {
    /// Elements per chunk.
    static var chunkCapacity: Int { 512 }

    /// Every chunk is full but the last; the first `head` slots of the first chunk were removed (nil).
    private var chunks: [ContiguousArray<Element?>] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { self.count == 0 }

    var first: Element? { self.count == 0 ? nil : self.chunks[0][self.head] }

    /// What `read` takes from the oldest element, read in place; nil when the queue is empty.
    func readFirst<T>(_ read: (Element) -> T) -> T? {
        guard self.count > 0 else { return nil }
        return read(self.chunks[0][self.head]!)
    }

    mutating func append(_ element: Element) {
        if self.chunks.isEmpty || self.chunks[self.chunks.count - 1].count == Self.chunkCapacity {
            var chunk = ContiguousArray<Element?>()
            chunk.reserveCapacity(Self.chunkCapacity)
            self.chunks.append(chunk)
        }
        self.chunks[self.chunks.count - 1].append(element)
        self.count += 1
    }

    /// Removes and returns the oldest element; nil when the queue is empty.
    @discardableResult
    mutating func popFirst() -> Element? {
        guard self.count > 0 else { return nil }
        let element = self.chunks[0][self.head].take()
        self.head += 1
        self.count -= 1
        if self.head == self.chunks[0].count {
            self.chunks.removeFirst()
            self.head = 0
        }
        return element
    }

    func makeIterator() -> Iterator {
        Iterator(chunks: self.chunks, chunk: 0, slot: self.head)
    }

    struct Iterator: IteratorProtocol {
        fileprivate let chunks: [ContiguousArray<Element?>]
        fileprivate var chunk: Int
        fileprivate var slot: Int

        mutating func next() -> Element? {
            while self.chunk < self.chunks.count {
                if self.slot < self.chunks[self.chunk].count {
                    defer { self.slot += 1 }
                    return self.chunks[self.chunk][self.slot]
                }
                self.chunk += 1
                self.slot = 0
            }
            return nil
        }
    }
}

extension ChunkedQueue: Sendable where Element: Sendable {}
