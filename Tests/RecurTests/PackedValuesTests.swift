import Recur
import Testing

/// Packed values start on a 64-byte line whatever malloc gave the array, and hold what was packed.
struct PackedValuesTests {
    @Test(arguments: [0, 1, 15, 16, 17, 1000, 70_000])
    func floatsStartOnALineAndKeepTheirValues(count: Int) {
        let values = (0..<count).map { Float($0) * 0.5 - 3 }
        let packed = PackedValues(values)
        packed.withPointer { first in
            #expect(Int(bitPattern: first) % 64 == 0)
            #expect(Array(UnsafeBufferPointer(start: first, count: count)) == values)
        }
    }

    @Test(arguments: [1, 31, 33, 70_001])
    func halvesWrittenByPackStartOnALine(count: Int) {
        let packed = PackedValues<UInt16>(count: count) { destination in
            for i in 0..<count { destination[i] = UInt16(truncatingIfNeeded: i &* 7) }
        }
        packed.withPointer { first in
            #expect(Int(bitPattern: first) % 64 == 0)
            #expect((0..<count).allSatisfy { first[$0] == UInt16(truncatingIfNeeded: $0 &* 7) })
        }
    }
}
