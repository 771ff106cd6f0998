/// Values packed for the kernels (rk_*_pack), the first of them on a 64-byte boundary, so that no vector
/// load of the kernels straddles two cache lines.
///
/// A Swift array's elements start 32 bytes into its heap object, and glibc's malloc puts a large one 16
/// bytes past a page: 48 bytes past a cache line, where every other 32-byte load of a lone row's step and
/// three in four 64-byte loads of a product's panels straddle two lines. Two threads running the
/// LSTM-256 step at batch 1 (each one's half of W_hh in its core's L2) took 7.1–7.4 µs a step with the
/// weights 48 bytes past a line and 5.5–5.8 µs aligned (16 or 32 bytes past: 5.5–5.8). Whole passes
/// through the C API, one model file loaded both ways and calls alternating (aligned against 48 bytes
/// past): LSTM-256 at batch 1 0.97, over 1000 steps with I = 1 0.95, GRU-512 0.98, RNN-256 0.99;
/// LSTM-100 at B = 5 and the products of larger batches level.
package struct PackedValues<Element: BitwiseCopyable & Sendable>: Sendable {
    /// The values from `start` on; zeros before them and after the last. Never mutated, so the
    /// elements stay where they were packed.
    private let storage: [Element]
    private let start: Int

    /// `count` values, zero but for those `pack` writes, given where they go.
    package init<Failure: Error>(count: Int, _ pack: (UnsafeMutablePointer<Element>) throws(Failure) -> Void) throws(Failure) {
        let slack = cacheLineBytes / MemoryLayout<Element>.stride
        var start = 0
        var storage = [Element](unsafeUninitializedCapacity: count + slack) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).initializeMemory(as: UInt8.self, repeating: 0)
            start = elementsToCacheLine(buffer.baseAddress!)
            initialized = buffer.count
        }
        try storage.withUnsafeMutableBufferPointer { (buffer) throws(Failure) in try pack(buffer.baseAddress! + start) }
        self.storage = storage
        self.start = start
    }

    /// A copy of `values`.
    package init(_ values: [Element]) {
        self.init(count: values.count) { destination in
            values.withUnsafeBufferPointer { source in
                if let first = source.baseAddress { destination.update(from: first, count: source.count) }
            }
        }
    }

    /// Calls `body` with the address of the first value.
    package func withPointer<R>(_ body: (UnsafePointer<Element>) -> R) -> R {
        storage.withUnsafeBufferPointer { body($0.baseAddress! + start) }
    }
}

/// The line the kernels' vector loads stay within: 64 bytes on the CPUs they run on.
let cacheLineBytes = 64

/// Elements from `address` to the first cache line at or after it.
func elementsToCacheLine<Element>(_ address: UnsafeMutablePointer<Element>) -> Int {
    (cacheLineBytes - Int(bitPattern: address) % cacheLineBytes) % cacheLineBytes / MemoryLayout<Element>.stride
}
