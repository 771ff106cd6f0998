import Foundation
import Recur
import Testing

/// Packed values start on a 64-byte line whatever malloc gave the array, hold what was packed, and sit on
/// transparent huge pages where the kernel gives them to memory that asks.
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

    /// 16 MiB of values: every whole 2 MiB page among them is a huge page. (The pages of a block that
    /// malloc reuses, which collapseIntoHugePages moves, are not covered: which block malloc hands out
    /// is glibc's choice.)
    @Test(.enabled(if: transparentHugePagesOnRequest(), "the kernel gives no transparent huge pages to memory that asks"))
    func largeValuesSitOnHugePages() throws {
        let count = 4 << 20
        let packed = PackedValues<Float>(count: count) { destination in
            for i in 0..<count { destination[i] = Float(i % 7) }
        }
        let (address, wholePages) = packed.withPointer { first in
            let start = Int(bitPattern: first), hugePage = 2 << 20
            let firstPage = (start + hugePage - 1) / hugePage * hugePage
            let endPage = (start + count * MemoryLayout<Float>.stride) / hugePage * hugePage
            return (firstPage, (endPage - firstPage) / hugePage)
        }
        let hugeKiB = try #require(try anonymousHugePagesKiB(mappingAt: address))
        #expect(hugeKiB >= wholePages * 2048, "\(hugeKiB) KiB of huge pages where \(wholePages) whole 2 MiB pages are")
        packed.withPointer { first in #expect(first[count - 1] == Float((count - 1) % 7)) }
    }
}

/// Whether Linux backs memory that asks for them (MADV_HUGEPAGE) with transparent huge pages: its mode
/// is `always` or `madvise`, not `never`, and the file is there.
private func transparentHugePagesOnRequest() -> Bool {
    guard let mode = try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8) else {
        return false
    }
    return !mode.contains("[never]")
}

/// The AnonHugePages line of the mapping in /proc/self/smaps that holds `address`, in KiB; nil where no
/// mapping holds it.
private func anonymousHugePagesKiB(mappingAt address: Int) throws -> Int? {
    // Read to its end: String(contentsOfFile:) stops at the first read of a /proc file (4 KiB here).
    let data = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/smaps")).readToEnd() ?? Data()
    let smaps = String(decoding: data, as: UTF8.self)
    var inMapping = false
    for line in smaps.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
            let bounds = range.split(separator: "-").compactMap { Int($0, radix: 16) }
            inMapping = bounds.count == 2 && bounds[0] <= address && address < bounds[1]
        } else if inMapping, fields.first == "AnonHugePages:", fields.count >= 2 {
            return Int(fields[1])
        }
    }
    return nil
}
