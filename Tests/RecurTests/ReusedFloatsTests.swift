import Recur
import Testing

/// Buffers kept between passes: given back, a buffer is the next one of its size taken; still shared
/// when taken, it is copied before it is written, so its other owner never sees the write; released,
/// they are all given up. Serialized: a release in the middle of another test would take its buffer.
@Suite(.serialized) struct ReusedFloatsTests {
    @Test func givenBufferIsTakenAgain() {
        let count = ReusedFloats.minimumCount + 101  // a size no other test uses: the kept buffers are the process's
        var given = [Float](repeating: 1, count: count)
        let address = given.withUnsafeBufferPointer { $0.baseAddress }
        ReusedFloats.give(given)
        given = []
        let taken = ReusedFloats.take(count)
        #expect(taken.count == count)
        #expect(taken.withUnsafeBufferPointer { $0.baseAddress } == address)
    }

    @Test func sharedBufferIsCopiedOnWrite() {
        let count = ReusedFloats.minimumCount + 202
        let kept = [Float](repeating: 1, count: count)
        ReusedFloats.give(kept)
        var taken = ReusedFloats.take(count)
        taken.withUnsafeMutableBufferPointer { $0.update(repeating: 2) }
        #expect(kept.allSatisfy { $0 == 1 })
        #expect(taken.count == count && taken.allSatisfy { $0 == 2 })
    }

    @Test func releaseGivesUpEveryKeptBuffer() {
        let count = ReusedFloats.minimumCount + 303
        ReusedFloats.give([Float](repeating: 1, count: count))
        ReusedFloats.give([Float](repeating: 2, count: count))
        // Other suites' passes may give buffers of their own meanwhile: at least these two.
        #expect(ReusedFloats.releaseAll() >= 2 * count * MemoryLayout<Float>.stride)
        #expect(ReusedFloats.take(count).count == count)
    }
}
