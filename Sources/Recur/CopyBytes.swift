import CRecurKernels

/// `to` ← `from`, as many bytes as the shorter of the two holds, through rk_copy_bytes: glibc's
/// memcpy, which Swift's own copies call, runs 15 times slower on this project's AMD machines when the
/// destination is 1–31 bytes past a multiple of 4 KiB from the source (perf-design.md), a distance
/// that two buffers' starts fall at about once in 256 layouts. For the transports' copies of tensors
/// in and out (the C API's, the daemon's).
package func copyBytes(_ from: UnsafeRawBufferPointer, to: UnsafeMutableRawBufferPointer) {
    guard let source = from.baseAddress, let destination = to.baseAddress else { return }
    rk_copy_bytes(destination, source, min(from.count, to.count))
}
