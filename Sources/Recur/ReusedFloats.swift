import CLinux
import Synchronization

/// Float buffers of 64 KiB and more, kept between forward passes for the next pass of the same
/// shapes: a recurrent layer's workspace and outputs, and the transports' copies of inputs.
///
/// Freed, they would go back to malloc, and glibc gives the top of its heap back to the system once
/// more than its trim threshold is free there (twice the largest block it has mapped and freed). A
/// pass whose transient buffers add up to more than that then grew the heap again on every call and
/// touched each page afresh: through the Python binding, 777 page faults and 1.5–2 ms of system time a
/// pass at rnn-128 B = 32 (a pass of 1.4 ms without them), 6,441 faults and 14 ms at rnn-512 B = 64
/// (47 ms), depending on what the process had allocated before. Kept here, a steady stream of passes
/// allocates nothing large after the first.
///
/// The buffers stay Swift arrays: one still shared when it is taken again is copied on write, never
/// written under its other owner. At most `maximumBuffers` are kept, `maximumBytes` in all, the
/// oldest given up first: a process keeps at most that much between passes, and a pass whose buffers
/// are larger allocates them as before (its arithmetic then dwarfs the faults). The price: a C API
/// result is new memory while the workspace stays kept, where it could take the workspace's freed
/// place (when results were copies of kept outputs, the peak rose by one output: 13 MB at rnn-512
/// B = 64, whose pass peaked 58 MiB above the process's baseline, then 72; the model now writes its
/// output straight into the result).
package enum ReusedFloats {
    package static let minimumCount = 16 * 1024
    static let maximumBuffers = 16
    static let maximumBytes = 128 << 20

    private struct Kept {
        var buffers: [[Float]] = []
        var bytes = 0
    }

    private static let kept = Mutex(Kept())

    /// `count` floats with unspecified contents: a kept buffer of exactly that many, or a new one.
    package static func take(_ count: Int) -> [Float] {
        if count >= minimumCount {
            let found = kept.withLock { kept -> [Float]? in
                guard let index = kept.buffers.lastIndex(where: { $0.count == count }) else { return nil }
                kept.bytes -= count * MemoryLayout<Float>.stride
                return kept.buffers.remove(at: index)
            }
            if let found { return found }
        }
        return [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    /// Keeps a float32 tensor's buffer (an integer tensor is left alone); the caller no longer needs
    /// its contents. Not generic over a sequence of tensors: called from the C API's and the daemon's
    /// modules, such a function ran unspecialized, and its lazy map's iterator, through witness
    /// tables and metadata lookups, cost 7,000 instructions a call of `recur_model_run`.
    package static func give(_ tensor: Tensor) {
        if let floats = tensor.floats { give(floats) }
    }

    /// Gives every kept buffer back to malloc, and glibc's free memory back to the system, and
    /// returns the bytes the kept buffers held. Passes in progress are unaffected (a buffer one of
    /// them still shares lives on with it); the next pass allocates afresh.
    @discardableResult
    package static func releaseAll() -> Int {
        let (released, bytes) = kept.withLock { kept -> ([[Float]], Int) in
            defer { kept = Kept() }
            return (kept.buffers, kept.bytes)
        }
        // Freed outside the lock, before the trim that hands their pages back.
        _ = consume released
        malloc_trim(0)
        return bytes
    }

    /// Keeps `buffer` for a later `take`; the caller no longer needs its contents.
    package static func give(_ buffer: [Float]) {
        let bytes = buffer.count * MemoryLayout<Float>.stride
        guard buffer.count >= minimumCount, bytes <= maximumBytes else { return }
        // The buffers given up are returned and released here, so that free() runs outside the lock.
        _ = kept.withLock { kept -> [[Float]] in
            kept.buffers.append(buffer)
            kept.bytes += bytes
            var dropped: [[Float]] = []
            while kept.buffers.count > maximumBuffers || kept.bytes > maximumBytes {
                let oldest = kept.buffers.removeFirst()
                kept.bytes -= oldest.count * MemoryLayout<Float>.stride
                dropped.append(oldest)
            }
            return dropped
        }
    }
}
