import Recur
import Testing

/// Dynamic batching must give exactly what one-by-one runs give: the golden batches are split into
/// one request per sequence (some cut to their own length, some with `lengths`, some with initial
/// states and some without), run as one batch, and compared bit for bit with separate runs, and
/// with PyTorch's numbers where the request is the golden row unchanged.
@Suite struct BatchingTests {
    /// The part of `tensor` whose index along `axis` is in `range`.
    static func select(_ tensor: Tensor, axis: Int, _ range: Range<Int>) throws -> Tensor {
        let shape = tensor.shape
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        func cut<E>(_ values: [E]) -> [E] {
            var out: [E] = []
            for o in 0..<outer {
                let base = o * shape[axis] * inner
                out += values[(base + range.lowerBound * inner)..<(base + range.upperBound * inner)]
            }
            return out
        }
        var newShape = shape
        newShape[axis] = range.count
        switch tensor.storage {
        case .float32(let v): return try .float32(cut(v), shape: newShape)
        case .int32(let v): return try .int32(cut(v), shape: newShape)
        case .int64(let v): return try .int64(cut(v), shape: newShape)
        }
    }

    /// One request per sequence of a golden case. Even rows keep T and pass their length (and their
    /// initial states); odd rows are cut to their own length, pass no lengths, start from zeros, and
    /// give token ids as int32.
    static func splitRequests(_ golden: GoldenCase) throws -> (requests: [[String: Tensor]], unchanged: [Bool]) {
        let input = try #require(golden.inputs["input"])
        let lengths = golden.inputs["lengths"]?.integers
        var requests: [[String: Tensor]] = []
        var unchanged: [Bool] = []
        for b in 0..<input.shape[0] {
            var request: [String: Tensor] = [:]
            let row = try select(input, axis: 0, b..<(b + 1))
            let hasStates = golden.inputs.keys.contains { $0.hasSuffix("0") && $0.contains(".") }
            if b % 2 == 0 {
                request["input"] = row
                if lengths != nil { request["lengths"] = try select(try #require(golden.inputs["lengths"]), axis: 0, b..<(b + 1)) }
                for (name, state) in golden.inputs where name != "input" && name != "lengths" {
                    request[name] = try select(state, axis: 1, b..<(b + 1))
                }
                unchanged.append(true)
            } else {
                let own = Int(lengths?[b] ?? Int64(input.shape[1]))
                var cut = try select(row, axis: 1, 0..<own)
                if let ids = cut.integers { cut = try .int32(ids.map { Int32($0) }, shape: cut.shape) }
                request["input"] = cut
                unchanged.append(!hasStates)
            }
            requests.append(request)
        }
        return (requests, unchanged)
    }

    @Test(arguments: try goldenCaseNames())
    func batchedEqualsOneByOne(_ name: String) throws {
        let golden = try GoldenCase(name)
        let (requests, unchanged) = try BatchingTests.splitRequests(golden)
        let batched = Batching.run(golden.model, requests)
        #expect(batched.count == requests.count)
        for (i, request) in requests.enumerated() {
            let alone = try golden.model.run(request)
            let together = try batched[i].get()
            #expect(together == alone, "\(name) request \(i): batched result differs from a separate run")
            guard unchanged[i] else { continue }
            // The golden row b, cut to this request's T where it was cut.
            for output in together {
                let expected = try BatchingTests.select(try #require(golden.expected[output.name]),
                                                        axis: output.name == "output" ? 0 : 1, i..<(i + 1))
                let ratio = toleranceRatio(output.tensor, expected)
                #expect(ratio != nil && ratio! <= 1, "\(name) request \(i) \(output.name): ratio \(ratio ?? .infinity)")
            }
        }
    }

    @Test func invalidRequestFailsAloneAndOthersAreUnaffected() throws {
        let golden = try GoldenCase("bilstm_classifier")
        var (requests, _) = try BatchingTests.splitRequests(golden)
        let good = requests
        requests.insert(["input": try .int64([0, 999], shape: [1, 2])], at: 1)  // id outside the vocabulary
        requests.append(["input": try .float32([0, 1], shape: [1, 2])])        // wrong dtype
        let results = Batching.run(golden.model, requests)
        #expect(throws: RecurError.self) { try results[1].get() }
        #expect(throws: RecurError.self) { try results[requests.count - 1].get() }
        let kinds = [1, requests.count - 1].compactMap { i -> RecurError.Kind? in
            if case .failure(let e) = results[i] { return e.kind } else { return nil }
        }
        #expect(kinds == [.invalidInput, .invalidInput])
        let valid = results.enumerated().filter { $0.offset != 1 && $0.offset != requests.count - 1 }.map(\.element)
        for (result, request) in zip(valid, good) {
            #expect(try result.get() == golden.model.run(request))
        }
    }

    @Test func sessionStepsBatchedEqualSeparateSessions() throws {
        let golden = try GoldenCase("char_lm")
        let ids = try #require(golden.inputs["input"]?.integers)
        // Three streams fed chunks of different lengths over two rounds.
        let chunks: [[[Int64]]] = [
            [Array(ids[0..<3]), Array(ids[3..<10])],
            [Array(ids[2..<9]), Array(ids[1..<2])],
            [Array(ids[5..<6]), Array(ids[0..<4])],
        ]
        var batchedSessions = try (0..<3).map { _ in try Session(model: golden.model) }
        var separateSessions = batchedSessions
        for round in 0..<2 {
            let inputs = try chunks.map { ["input": try Tensor.int64($0[round], shape: [1, $0[round].count])] }
            let batched = Batching.step(&batchedSessions, inputs)
            for i in 0..<3 {
                let alone = try separateSessions[i].step(inputs[i])
                #expect(try batched[i].get() == alone, "round \(round) stream \(i)")
                #expect(batchedSessions[i].states == separateSessions[i].states, "round \(round) stream \(i) state")
            }
        }
        // The first stream, fed the whole golden sequence in two chunks, reproduces PyTorch.
        let final = try #require(batchedSessions[0].states["lm.h0"])
        let ratio = toleranceRatio(final, try #require(golden.expected["lm.h_n"]))
        #expect(ratio != nil && ratio! <= 1)
    }

    @Test func failedStepLeavesItsSessionUnchanged() throws {
        let golden = try GoldenCase("char_lm")
        var sessions = try (0..<2).map { _ in try Session(model: golden.model) }
        let first = try (0..<2).map { _ in ["input": try Tensor.int64([1, 2, 3], shape: [1, 3])] }
        _ = Batching.step(&sessions, first)
        let before = sessions[1].states
        let results = Batching.step(&sessions, [
            ["input": try .int64([4, 5], shape: [1, 2])],
            ["input": try .int64([4, 5, 6, 7], shape: [2, 2])],  // the held state is for batch 1
        ])
        #expect(throws: RecurError.self) { try results[1].get() }
        #expect(sessions[1].states == before)
        #expect(sessions[0].states != before)
    }
}
