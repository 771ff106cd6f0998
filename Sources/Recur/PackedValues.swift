#if canImport(Glibc)
import Glibc
#endif

/// Values packed for the kernels (rk_*_pack), the first of them on a 64-byte boundary, so that no vector
/// load of the kernels straddles two cache lines, and on huge pages where whole ones fit (adviseHugePages).
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
            adviseHugePages(UnsafeMutableRawBufferPointer(buffer))
            UnsafeMutableRawBufferPointer(buffer).initializeMemory(as: UInt8.self, repeating: 0)
            start = elementsToCacheLine(buffer.baseAddress!)
            initialized = buffer.count
        }
        try storage.withUnsafeMutableBufferPointer { (buffer) throws(Failure) in
            try pack(buffer.baseAddress! + start)
            collapseIntoHugePages(UnsafeMutableRawBufferPointer(buffer))
        }
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

/// The huge page of x86-64 and of arm64 with 4 KiB pages.
let hugePageBytes = 2 << 20

/// The whole huge pages inside `buffer`: where adviseHugePages and collapseIntoHugePages act.
private func wholeHugePages(_ buffer: UnsafeMutableRawBufferPointer) -> (first: UnsafeMutableRawPointer, bytes: Int)? {
    guard let base = buffer.baseAddress else { return nil }
    let first = (Int(bitPattern: base) + hugePageBytes - 1) / hugePageBytes * hugePageBytes
    let end = (Int(bitPattern: base) + buffer.count) / hugePageBytes * hugePageBytes
    guard end > first, let pointer = UnsafeMutableRawPointer(bitPattern: first) else { return nil }
    return (pointer, end - first)
}

/// Asks the kernel to back the whole huge pages inside `buffer`, not yet touched, with transparent huge
/// pages as they are first written (Linux's `madvise` mode, a common default, gives them only to memory
/// that asks; numpy asks the same for its arrays of 4 MiB and more).
///
/// Weights larger than the L2 stream from L3 every step, and on 4 KiB pages each step walks thousands
/// of page table entries (16 MiB is 4096 pages, about twice the entries of a recent core's
/// second-level TLB) and the hardware prefetchers stop at every 4 KiB boundary. Measured on an Intel
/// Xeon VM (family 6 model 207, 2 MiB of L2 a core), one process, the same run with its packed weights
/// on huge pages against 4 KiB ones, passes alternating, same bits: LSTM-1002 I = 830 B = 32 T = 12
/// 0.97, LSTM-899 I = 106 B = 32 0.96, LSTM-1024 B = 1 0.98, LSTM-2048 B = 4 0.99, LSTM-256 B = 32
/// 0.99 and LSTM-512 B = 64 1.00; one core's product of 16 rows over 16 MiB of weights 0.93.
///
/// Advice only: where the kernel has no transparent huge pages (EINVAL) or none free, the values stay
/// on small pages, correct and slower, so the answer is not checked. Buffers without a whole huge
/// page inside are left alone (each call splits the mapping around its range).
func adviseHugePages(_ buffer: UnsafeMutableRawBufferPointer) {
    #if os(Linux)
    guard let pages = wholeHugePages(buffer) else { return }
    _ = madvise(pages.first, pages.bytes, MADV_HUGEPAGE)
    #endif
}

/// Linux's MADV_COLLAPSE (6.1 and later; asm-generic/mman-common.h), which glibc 2.36's headers lack.
private let madviseCollapse: Int32 = 25

/// Moves the whole huge pages inside `buffer` that are still on small pages onto huge ones: the pages
/// malloc had touched before handing the block out (a block it reuses), which adviseHugePages's advice
/// does not reach. A model file's weights came out on huge pages for 10 of their 29 MiB without it
/// (LSTM-1002 I = 830, through the Python binding), 24 with it. It copies such pages once (0.15–0.9 ms
/// a 12 MiB matrix here, strace); pages already huge are left as they are (0.17 ms a 62 MiB matrix).
/// Advice only, as adviseHugePages: older kernels answer EINVAL.
func collapseIntoHugePages(_ buffer: UnsafeMutableRawBufferPointer) {
    #if os(Linux)
    guard let pages = wholeHugePages(buffer) else { return }
    _ = madvise(pages.first, pages.bytes, madviseCollapse)
    #endif
}
