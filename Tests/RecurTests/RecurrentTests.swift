import Recur
import CRecurKernels
import Foundation
import Testing

/// The engine against the independent float64 reference on shapes the golden cases leave open:
/// T = 1, B = 1, lengths of 1, stacks, both directions, large hidden sizes, given initial states.
@Suite struct RecurrentTests {
    struct Shape: CustomTestStringConvertible, Sendable {
        let cell: ReferenceRecurrent.Cell
        let batch: Int, steps: Int, input: Int, hidden: Int, layers: Int, directions: Int
        var bias = true, relu = false, withLengths = true, withStates = false
        var testDescription: String {
            "\(cell) B\(batch) T\(steps) I\(input) H\(hidden) L\(layers) D\(directions)\(bias ? "" : " nobias")\(relu ? " relu" : "")\(withLengths ? " lengths" : "")\(withStates ? " states" : "")"
        }
    }

    static let shapes: [Shape] = [
        Shape(cell: .lstm, batch: 1, steps: 1, input: 3, hidden: 4, layers: 1, directions: 1, withLengths: false),
        Shape(cell: .gru, batch: 1, steps: 1, input: 3, hidden: 4, layers: 2, directions: 2),
        Shape(cell: .rnn, batch: 4, steps: 6, input: 5, hidden: 3, layers: 3, directions: 2, relu: true, withStates: true),
        Shape(cell: .rnn, batch: 3, steps: 5, input: 2, hidden: 7, layers: 1, directions: 1, bias: false),
        Shape(cell: .lstm, batch: 5, steps: 7, input: 4, hidden: 6, layers: 2, directions: 2, withStates: true),
        Shape(cell: .gru, batch: 6, steps: 4, input: 3, hidden: 5, layers: 2, directions: 1, bias: false, withStates: true),
        Shape(cell: .lstm, batch: 2, steps: 3, input: 40, hidden: 300, layers: 1, directions: 1),
        Shape(cell: .gru, batch: 2, steps: 3, input: 17, hidden: 257, layers: 1, directions: 2),
        // The packed kernels' edges: row groups and their remainders (lstm 2, gru 3, rnn 6 rows),
        // a lone row's paired unit blocks with an odd block count, partial unit blocks (H % 8),
        // partial column panels (G·H % 16), and steps big enough to split over the worker threads.
        Shape(cell: .lstm, batch: 7, steps: 5, input: 9, hidden: 20, layers: 2, directions: 1, withStates: true),
        Shape(cell: .lstm, batch: 1, steps: 4, input: 33, hidden: 264, layers: 1, directions: 1),
        Shape(cell: .gru, batch: 5, steps: 4, input: 21, hidden: 133, layers: 2, directions: 2, withStates: true),
        Shape(cell: .rnn, batch: 8, steps: 6, input: 7, hidden: 70, layers: 1, directions: 2, relu: true),
        Shape(cell: .rnn, batch: 13, steps: 3, input: 12, hidden: 129, layers: 1, directions: 1),
        // Matrix-product tiles of the step (6 rows with AVX2, 12 with AVX-512) with row groups after
        // them, partial unit blocks, k in more than one chunk (H > 128), lengths and states.
        Shape(cell: .lstm, batch: 29, steps: 4, input: 11, hidden: 20, layers: 1, directions: 1, withStates: true),
        Shape(cell: .lstm, batch: 25, steps: 3, input: 16, hidden: 140, layers: 2, directions: 2),
        Shape(cell: .gru, batch: 26, steps: 3, input: 10, hidden: 36, layers: 1, directions: 1, withStates: true),
        Shape(cell: .rnn, batch: 37, steps: 3, input: 19, hidden: 44, layers: 1, directions: 1, withStates: true),
        // Bands of 4 and of 4 and 5 rows, one per thread, whose steps project their own input
        // (BAND_PROJECTING_MIN_ROWS), on a machine of two CPUs or more.
        Shape(cell: .lstm, batch: 8, steps: 6, input: 32, hidden: 64, layers: 2, directions: 1, withStates: true),
        Shape(cell: .rnn, batch: 9, steps: 5, input: 40, hidden: 120, layers: 1, directions: 1),
        // Bands of 3 and 2 rows and of 2 and 2 in wide tiles (WIDE_TILE_BAND_MIN_ROWS, with the AVX-512
        // and AVX2 kernels), on a machine of two CPUs or more; B = 1 and B = 2 above split their steps
        // and their input projection alike (projection_phases).
        Shape(cell: .lstm, batch: 5, steps: 7, input: 37, hidden: 100, layers: 2, directions: 1, withStates: true),
        Shape(cell: .lstm, batch: 4, steps: 6, input: 32, hidden: 64, layers: 1, directions: 1),
        // Outputs and workspaces large enough to be kept between passes (ReusedFloats).
        Shape(cell: .lstm, batch: 9, steps: 40, input: 16, hidden: 48, layers: 2, directions: 2),
        Shape(cell: .gru, batch: 33, steps: 12, input: 8, hidden: 45, layers: 1, directions: 1),
    ]

    @Test(arguments: shapes)
    func matchesReference(_ shape: Shape) throws {
        let reference = ReferenceRecurrent.random(shape.cell, inputSize: shape.input, hidden: shape.hidden, layers: shape.layers,
                                                  directions: shape.directions, bias: shape.bias, relu: shape.relu, seed: 77)
        let model = try reference.model()
        let (B, T, F, H) = (shape.batch, shape.steps, shape.input, shape.hidden)
        let rows = shape.layers * shape.directions
        let x = testValues(B * T * F, seed: 5)
        // Lengths include 1 and T whenever the batch allows.
        let lengths = (0..<B).map { b in b == 0 ? T : b == 1 ? 1 : 1 + (b * 7) % T }
        let h0 = testValues(rows * B * H, seed: 6, scale: 0.5)
        let c0 = testValues(rows * B * H, seed: 7, scale: 0.5)
        var inputs: [String: Tensor] = ["input": try .float32(x, shape: [B, T, F])]
        if shape.withLengths { inputs["lengths"] = try .int64(lengths.map(Int64.init), shape: [B]) }
        if shape.withStates {
            inputs["rec.h0"] = try .float32(h0, shape: [rows, B, H])
            if shape.cell == .lstm { inputs["rec.c0"] = try .float32(c0, shape: [rows, B, H]) }
        }
        // A pass of the same shapes first, over every step and other values, so that buffers kept
        // from it (ReusedFloats) hold stale values where the checked pass must write or zero.
        _ = try model.run(["input": try .float32(testValues(B * T * F, seed: 8, scale: 3), shape: [B, T, F])])
        let outputs = try model.run(inputs)
        let output = try #require(outputs.first { $0.name == "output" }?.tensor.floats)
        let hN = try #require(outputs.first { $0.name == "rec.h_n" }?.tensor.floats)
        let cN = outputs.first { $0.name == "rec.c_n" }?.tensor.floats
        #expect((cN != nil) == (shape.cell == .lstm))

        let DH = shape.directions * H
        var worst = 0.0
        func check(_ actual: Float, _ expected: Double) {
            worst = max(worst, abs(Double(actual) - expected) / max(1e-5, 1e-4 * abs(expected)))
        }
        for b in 0..<B {
            let sequence = (0..<T).map { t in (0..<F).map { Double(x[(b * T + t) * F + $0]) } }
            let state = { (values: [Float]) in (0..<rows).map { r in (0..<H).map { Double(values[(r * B + b) * H + $0]) } } }
            let length = shape.withLengths ? lengths[b] : T
            let expected = reference.run(sequence, length: length,
                                         h0: shape.withStates ? state(h0) : nil,
                                         c0: shape.withStates && shape.cell == .lstm ? state(c0) : nil)
            for t in 0..<T {
                for j in 0..<DH { check(output[(b * T + t) * DH + j], t < length ? expected.y[t][j] : 0) }
            }
            for r in 0..<rows {
                for j in 0..<H {
                    check(hN[(r * B + b) * H + j], expected.h[r][j])
                    if let cN { check(cN[(r * B + b) * H + j], expected.c[r][j]) }
                }
            }
        }
        #expect(worst <= 1, "worst error ratio \(worst) (1 = 1e-4 relative / 1e-5 absolute)")
    }

    /// A sequence gives the same numbers, bit for bit, wherever it sits in a batch: alone, or in a
    /// batch big enough that the step computes most rows in matrix-product tiles and the rest in row
    /// groups. Dynamic batching relies on it.
    @Test(arguments: [ReferenceRecurrent.Cell.lstm, .gru, .rnn])
    func rowsAreTheSameInAnyBatch(_ cell: ReferenceRecurrent.Cell) throws {
        let (B, T, F, H) = (31, 5, 12, 140)
        let model = try ReferenceRecurrent.random(cell, inputSize: F, hidden: H, seed: 31).model()
        let x = testValues(B * T * F, seed: 32)
        let lengths = (0..<B).map { Int64(1 + ($0 * 3) % T) }
        let together = try model.run(["input": try .float32(x, shape: [B, T, F]),
                                      "lengths": try .int64(lengths, shape: [B])])
        let output = try #require(together.first { $0.name == "output" }?.tensor.floats)
        for b in [0, 5, 6, 11, 12, 23, 24, 29, 30] {
            let alone = try model.run(["input": try .float32(Array(x[(b * T * F)..<((b + 1) * T * F)]), shape: [1, T, F]),
                                       "lengths": try .int64([lengths[b]], shape: [1])])
            let row = try #require(alone.first { $0.name == "output" }?.tensor.floats)
            let differing = zip(output[(b * T * H)..<((b + 1) * T * H)], row).filter { $0 != $1 }.count
            #expect(row.count == T * H && differing == 0, "row \(b) of \(B): \(differing) of \(T * H) values differ from its run alone")
        }
    }

    /// A NaN in one sequence's input makes that sequence's outputs NaN from its step on, as in
    /// PyTorch, and leaves the other rows of the batch alone: the gates must not clamp NaN into a
    /// saturated ±1 or 0 and carry on. Both ways a step computes rows: fused tiles and row groups
    /// (3 rows), and the matrix product (20 rows); and with products in bfloat16, which round NaN to
    /// NaN (2 and 13 rows).
    @Test(arguments: [(ReferenceRecurrent.Cell.lstm, false), (.gru, false), (.rnn, false), (.rnn, true)],
          [(3, false), (20, false), (2, true), (13, true)])
    func nanInputMakesItsRowNaNAndNoOther(_ cell: (ReferenceRecurrent.Cell, relu: Bool), rows: (batch: Int, bfloat16: Bool)) throws {
        let (T, F, H, poisoned, from, batch) = (5, 6, 20, 1, 2, rows.batch)
        var reference = ReferenceRecurrent.random(cell.0, inputSize: F, hidden: H, relu: cell.relu, seed: 61)
        reference.bfloat16 = rows.bfloat16
        let model = try reference.model()
        var x = testValues(batch * T * F, seed: 62)
        x[(poisoned * T + from) * F + 3] = .nan
        let output = try #require(try model.run(["input": try .float32(x, shape: [batch, T, F])])
            .first { $0.name == "output" }?.tensor.floats)
        for b in 0..<batch {
            for t in 0..<T {
                let values = output[((b * T + t) * H)..<((b * T + t + 1) * H)]
                if b == poisoned && t >= from {
                    let notNaN = values.filter { !$0.isNaN }.count
                    #expect(notNaN == 0, "row \(b) step \(t): \(notNaN) of \(H) values not NaN")
                } else {
                    let notFinite = values.filter { !$0.isFinite }.count
                    #expect(notFinite == 0, "row \(b) step \(t): \(notFinite) of \(H) values not finite")
                }
            }
        }
    }

    /// relu and max pooling keep a NaN as PyTorch does (relu(NaN) = NaN, and max over steps is NaN
    /// if any step is), wherever in the sequence it falls; the other features and rows stay finite.
    @Test func nanPassesThroughReluAndMaxPool() throws {
        let (B, T, F) = (3, 4, 5)
        let arch = try Architecture(json: .object([
            "format": .int(1), "input": .object(["kind": .string("features"), "size": .int(F)]),
            "layers": .array([.object(["name": .string("r"), "type": .string("relu")]),
                              .object(["name": .string("p"), "type": .string("pool"), "mode": .string("max")])]),
        ]))
        let model = try Model(architecture: arch, weights: [:])
        var x = testValues(B * T * F, seed: 63)
        x[(0 * T + 0) * F + 1] = .nan  // row 0's first step, feature 1
        x[(2 * T + 3) * F + 4] = .nan  // row 2's last step, feature 4
        let output = try #require(try model.run(["input": try .float32(x, shape: [B, T, F])])
            .first { $0.name == "output" }?.tensor.floats)
        #expect(output.count == B * F)
        for b in 0..<B {
            for f in 0..<F {
                let poisoned = (b, f) == (0, 1) || (b, f) == (2, 4)
                #expect(output[b * F + f].isNaN == poisoned, "row \(b) feature \(f): \(output[b * F + f])")
            }
        }
    }

    /// `recurrent_weights: "float16"` computes with W_hh rounded to half precision (to nearest even)
    /// and nothing else changed: the float64 reference given those rounded weights agrees to float32
    /// rounding, in tiles, row groups and lone rows alike; the exact weights' outputs differ from it.
    @Test(arguments: [ReferenceRecurrent.Cell.lstm, .gru, .rnn])
    func halfRecurrentWeightsAreRoundedWeights(_ cell: ReferenceRecurrent.Cell) throws {
        let (B, T, F, H) = (29, 4, 10, 44)
        let exact = ReferenceRecurrent.random(cell, inputSize: F, hidden: H, directions: 2, seed: 51)
        var engine = exact
        engine.halfRecurrent = true
        let rounded = exact.roundingWeights("weight_hh") { Float(Float16($0)) }
        #expect(rounded.weights != exact.weights)
        let x = testValues(B * T * F, seed: 52, scale: 0.3)
        let output = try #require(try engine.model().run(["input": try .float32(x, shape: [B, T, F])])
            .first { $0.name == "output" }?.tensor.floats)
        let (worstRounded, worstExact) = largestDistances(output, input: x, steps: T, features: F, references: (rounded, exact)) {
            abs($0 - $1) / max(1e-5, 1e-4 * abs($1))
        }
        #expect(worstRounded <= 1, "error ratio against the rounded weights' reference: \(worstRounded)")
        #expect(worstExact > 1, "indistinguishable from the exact weights: \(worstExact)")
    }

    /// Shapes whose float32 steps run as matrix products: 29 rows of 44 units through a stack, and 64 rows
    /// of 512 with x's rows 4 KiB apart, which such steps copy into their workspace.
    static let widenedShapes: [Shape] = [ReferenceRecurrent.Cell.lstm, .gru, .rnn].map {
        Shape(cell: $0, batch: 29, steps: 4, input: 10, hidden: 44, layers: 2, directions: 2, withLengths: false)
    } + [Shape(cell: .rnn, batch: 64, steps: 2, input: 512, hidden: 512, layers: 1, directions: 2, withLengths: false)]

    /// Where a batch's float32 steps run as matrix products (rk_step_widens_half_weights), a run widens
    /// half-precision W_hh to float32 and steps on that: its outputs are bit for bit those of float32
    /// weights equal to the halves, through every layer of a stack and both directions, and each row's
    /// are those of the row run alone, which steps on the halves themselves.
    @Test(arguments: widenedShapes)
    func widenedHalfWeightsAreTheHalves(_ shape: Shape) throws {
        let (B, T, F, H) = (shape.batch, shape.steps, shape.input, shape.hidden)
        var half = ReferenceRecurrent.random(shape.cell, inputSize: F, hidden: H, layers: shape.layers,
                                             directions: shape.directions, seed: 54)
        half.halfRecurrent = true
        #expect(rk_step_widens_half_weights(half.gates, B, H) != 0 && rk_step_widens_half_weights(half.gates, 1, H) == 0)
        var rounded = half.roundingWeights("weight_hh") { Float(Float16($0)) }
        rounded.halfRecurrent = false
        let x = testValues(B * T * F, seed: 55, scale: 0.3)
        func output(_ reference: ReferenceRecurrent, rows: Range<Int>) throws -> [Float] {
            let input = Array(x[(rows.lowerBound * T * F)..<(rows.upperBound * T * F)])
            return try #require(try reference.model().run(["input": try .float32(input, shape: [rows.count, T, F])])
                .first { $0.name == "output" }?.tensor.floats)
        }
        let widened = try output(half, rows: 0..<B)
        #expect(widened == (try output(rounded, rows: 0..<B)))
        let rowValues = T * shape.directions * H
        for b in [0, B / 2, B - 1] {
            #expect(Array(widened[(b * rowValues)..<((b + 1) * rowValues)]) == (try output(half, rows: b..<(b + 1))), "row \(b)")
        }
    }

    /// `precision: "bfloat16"` computes every product with its weights and its inputs (x, and h at every
    /// step) rounded to bfloat16: the float64 reference that rounds the same way explains the engine's
    /// outputs, in the tiles of many rows and for a lone row alike, far better than the exact one does,
    /// and a row's numbers do not depend on the rows batched with it.
    @Test(arguments: [ReferenceRecurrent.Cell.lstm, .gru, .rnn])
    func bfloat16ProductsAreRoundedProducts(_ cell: ReferenceRecurrent.Cell) throws {
        let (B, T, F, H) = (29, 4, 11, 44)
        let exact = ReferenceRecurrent.random(cell, inputSize: F, hidden: H, directions: 2, seed: 61)
        var engine = exact
        engine.bfloat16 = true
        var rounded = exact.roundingWeights("weight", bfloat16Rounded)
        rounded.productInputRounding = { Double(bfloat16Rounded(Float($0))) }
        let model = try engine.model()
        let x = testValues(B * T * F, seed: 62, scale: 0.8)
        let output = try #require(try model.run(["input": try .float32(x, shape: [B, T, F])])
            .first { $0.name == "output" }?.tensor.floats)
        let (worstRounded, worstExact) = largestDistances(output, input: x, steps: T, features: F, references: (rounded, exact)) {
            abs($0 - $1)
        }
        // Float32 sums and activations against float64 ones (≈1e-7 here), and now and then an h that
        // float32 rounds to the neighbouring bfloat16 (4e-6 for gru here); rounding's own cost is ≈1e-2.
        #expect(worstRounded <= 5e-5, "largest difference from the rounding reference: \(worstRounded)")
        #expect(worstExact >= 100 * worstRounded, "exact reference \(worstExact) against rounding reference \(worstRounded)")
        let last = B - 1
        let alone = try #require(try model.run(["input": try .float32(Array(x[(last * T * F)...]), shape: [1, T, F])])
            .first { $0.name == "output" }?.tensor.floats)
        #expect(alone == Array(output[(last * T * 2 * H)...]))
    }

    /// Half precision holds values within ±65504: a larger W_hh value is refused by name.
    @Test func halfRecurrentWeightsOutOfRangeAreRefused() throws {
        var reference = ReferenceRecurrent.random(.lstm, inputSize: 3, hidden: 4, seed: 53)
        reference.halfRecurrent = true
        reference.weights["weight_hh_l0"]![5] = 70000
        #expect {
            try reference.model()
        } throws: { error in
            guard let error = error as? RecurError else { return false }
            return error.kind == .format && error.message.contains("rec.weight_hh_l0") && error.message.contains("70000")
        }
    }

    /// bfloat16 products already hold W_hh in bfloat16: asking for half-precision W_hh besides is refused.
    @Test func bfloat16WithHalfRecurrentWeightsIsRefused() throws {
        var reference = ReferenceRecurrent.random(.gru, inputSize: 3, hidden: 4, seed: 63)
        reference.halfRecurrent = true
        reference.bfloat16 = true
        #expect {
            try reference.model()
        } throws: { error in
            guard let error = error as? RecurError else { return false }
            return error.kind == .format && error.message.contains("bfloat16") && error.message.contains("float16")
        }
    }

    /// RECUR_KERNELS picks the kernel variant whenever the CPU runs it (test.sh runs these tests under
    /// each variant, and would otherwise test one variant three times).
    @Test func kernelVariantFollowsTheEnvironment() throws {
        let name = String(cString: rk_kernels_name())
        #expect(["portable", "avx2", "avx512", "avx512_tiles_on_avx2"].contains(name))
        guard let wanted = ProcessInfo.processInfo.environment["RECUR_KERNELS"] else { return }
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(whereSeparator: \.isWhitespace) ?? []
        let hasAVX2 = flags.contains("avx2") && flags.contains("fma")
        if wanted == "portable" || (hasAVX2 && ["avx2", "avx512_tiles_on_avx2"].contains(wanted)) {
            #expect(name == wanted)
        }
    }

    /// Threads running one model at once (the worker pool busy with one of them, the others alone)
    /// get exactly the result of a run by itself.
    @Test func concurrentRunsEqualOneRun() async throws {
        let model = try ReferenceRecurrent.random(.lstm, inputSize: 16, hidden: 136, directions: 2, seed: 21).model()
        let inputs = ["input": try Tensor.float32(testValues(3 * 12 * 16, seed: 22), shape: [3, 12, 16])]
        let alone = try model.run(inputs)
        let results = try await withThrowingTaskGroup(of: [NamedTensor].self) { group in
            for _ in 0..<8 { group.addTask { try model.run(inputs) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 8)
        for result in results { #expect(result == alone) }
    }

    /// Feeding a sequence in chunks, down to one step at a time, equals one whole run, in float32 and
    /// with products in bfloat16.
    @Test(arguments: [ReferenceRecurrent.Cell.lstm, .gru, .rnn], [false, true])
    func sessionChunksEqualWholeRun(_ cell: ReferenceRecurrent.Cell, bfloat16: Bool) throws {
        var reference = ReferenceRecurrent.random(cell, inputSize: 3, hidden: 5, layers: 2, seed: 11)
        reference.bfloat16 = bfloat16
        let model = try reference.model()
        let (B, T, F) = (2, 9, 3)
        let x = testValues(B * T * F, seed: 12)
        let whole = try model.run(["input": try .float32(x, shape: [B, T, F])])
        for chunks in [[1, 1, 1, 1, 1, 1, 1, 1, 1], [4, 5], [2, 1, 6]] {
            var session = try Session(model: model)
            var pieces: [[Float]] = Array(repeating: [], count: B)
            var last: [NamedTensor] = []
            var start = 0
            for size in chunks {
                var chunk: [Float] = []
                for b in 0..<B { chunk += x[((b * T + start) * F)..<((b * T + start + size) * F)] }
                last = try session.step(["input": try .float32(chunk, shape: [B, size, F])])
                let y = try #require(last[0].tensor.floats)
                for b in 0..<B { pieces[b] += y[(b * size * 5)..<((b + 1) * size * 5)] }
                start += size
            }
            let streamed = try Tensor.float32(pieces.flatMap { $0 }, shape: [B, T, 5])
            #expect(toleranceRatio(streamed, whole[0].tensor, relative: 1e-5, absolute: 1e-6).map { $0 <= 1 } == true, "chunks \(chunks)")
            for (a, b) in zip(last.dropFirst(), whole.dropFirst()) {
                #expect(a.name == b.name)
                #expect(toleranceRatio(a.tensor, b.tensor, relative: 1e-5, absolute: 1e-6).map { $0 <= 1 } == true, "\(a.name), chunks \(chunks)")
            }
        }
    }

    @Test func sessionRefusesOtherBatchUntilReset() throws {
        let model = try ReferenceRecurrent.random(.gru, inputSize: 2, hidden: 3, seed: 1).model()
        var session = try Session(model: model)
        _ = try session.step(["input": try .float32(testValues(2 * 2, seed: 1), shape: [2, 1, 2])])
        #expect(throws: RecurError.self) { try session.step(["input": try .float32(testValues(3 * 2, seed: 1), shape: [3, 1, 2])]) }
        session.reset()
        #expect(try session.step(["input": try .float32(testValues(3 * 2, seed: 1), shape: [3, 1, 2])])[0].tensor.shape == [3, 1, 3])
    }

    @Test func bidirectionalModelCannotStream() throws {
        let model = try ReferenceRecurrent.random(.lstm, inputSize: 2, hidden: 3, directions: 2, seed: 1).model()
        #expect(!model.canStream)
        let error = #expect(throws: RecurError.self) { try Session(model: model) }
        #expect(error?.kind == .unsupported)
    }

    @Test func sessionAfterResetStartsFromZeros() throws {
        let model = try ReferenceRecurrent.random(.lstm, inputSize: 2, hidden: 3, seed: 3).model()
        let x = try Tensor.float32(testValues(4, seed: 2), shape: [1, 2, 2])
        var session = try Session(model: model)
        let first = try session.step(["input": x])
        #expect(try session.step(["input": x])[0] != first[0])
        session.reset()
        #expect(try session.step(["input": x]) == first)
    }
}

/// The largest distance(engine's, reference's) over the outputs [B, T, D·H] of a one-layer model of
/// input [B, T, features], against each of two references.
func largestDistances(_ output: [Float], input x: [Float], steps T: Int, features F: Int,
                      references: (ReferenceRecurrent, ReferenceRecurrent),
                      distance: (Double, Double) -> Double) -> (Double, Double) {
    let width = references.0.directions * references.0.hidden
    var worst = (0.0, 0.0)
    for b in 0..<(x.count / (T * F)) {
        let sequence = (0..<T).map { t in (0..<F).map { Double(x[(b * T + t) * F + $0]) } }
        let first = references.0.run(sequence, length: T, h0: nil, c0: nil).y
        let second = references.1.run(sequence, length: T, h0: nil, c0: nil).y
        for t in 0..<T {
            for j in 0..<width {
                let actual = Double(output[(b * T + t) * width + j])
                worst = (max(worst.0, distance(actual, first[t][j])), max(worst.1, distance(actual, second[t][j])))
            }
        }
    }
    return worst
}

/// x rounded to bfloat16 as the kernels round it: to nearest even, a zero of its sign below 2⁻¹²⁶.
func bfloat16Rounded(_ x: Float) -> Float {
    let bits = x.bitPattern
    if bits & 0x7f80_0000 == 0 { return Float(bitPattern: bits & 0x8000_0000) }
    if x.isNaN { return x }
    return Float(bitPattern: (bits &+ 0x7fff &+ ((bits >> 16) & 1)) & 0xffff_0000)
}
