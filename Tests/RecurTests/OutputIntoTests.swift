import Recur
import Testing

/// `Model.run(_:outputInto:)`, the C API's path: the output written into the caller's memory, by a
/// last recurrent layer itself or copied from any other last layer, and float input read in place
/// from the caller's memory (`BorrowedFeatures`), by a first recurrent layer itself or copied for any
/// other, give `run`'s outputs bit for bit; `outputLayout` describes what `run` returns.
@Suite struct OutputIntoTests {
    /// The outputs through `outputInto`, over memory first filled with NaN (so a value the model left
    /// unwritten, such as a padding step's zero, shows), with the input given as a tensor and, for a
    /// model of features, borrowed, against `run`'s.
    func checkAgainstRun(_ model: Model, _ inputs: [String: Tensor]) throws {
        let expected = try model.run(inputs)
        var requests = [try RunRequest(model: model, inputs: inputs)]
        let input = try #require(inputs["input"])
        try (input.floats ?? []).withUnsafeBufferPointer { features in
            if input.dtype == .float32 {
                var others = inputs
                others["input"] = nil
                requests.append(try RunRequest(model: model, inputs: others, borrowed: BorrowedFeatures(features, shape: input.shape)))
            }
            for request in requests {
                try check(model, request, against: expected)
            }
        }
    }

    func check(_ model: Model, _ request: RunRequest, against expected: [NamedTensor]) throws {
        let layout = model.outputLayout(request)
        #expect(layout.map(\.name) == expected.map(\.name))
        #expect(layout.map(\.dtype) == expected.map(\.tensor.dtype))
        #expect(layout.map(\.shape) == expected.map(\.tensor.shape))

        let first = try #require(layout.first)
        var memory = [Float](repeating: .nan, count: first.shape.reduce(1, *))
        let states = try memory.withUnsafeMutableBytes { bytes in try model.run(request, outputInto: bytes) }
        #expect(states.map(\.name) == expected.dropFirst().map(\.name))
        for (state, expectedState) in zip(states, expected.dropFirst()) {
            #expect(state.tensor == expectedState.tensor, "\(state.name)")
        }
        let output = try #require(expected.first?.tensor)
        switch output.storage {
        case .float32(let values): #expect(memory.map(\.bitPattern) == values.map(\.bitPattern))
        case .int32(let ids): #expect(memory.map { Int32(bitPattern: $0.bitPattern) } == ids)
        case .int64: Issue.record("a model's output is float32 or int32")
        }
    }

    @Test func recurrentLastLayerWritesInPlace() throws {
        // Stacked and bidirectional, with lengths (padding steps must come out zero, not NaN) and states.
        let reference = ReferenceRecurrent.random(.lstm, inputSize: 5, hidden: 12, layers: 2, directions: 2, bias: true,
                                                  relu: false, seed: 3)
        let model = try reference.model()
        let (B, T) = (4, 6)
        try checkAgainstRun(model, [
            "input": .float32(testValues(B * T * 5, seed: 1), shape: [B, T, 5]),
            "lengths": .int64([6, 1, 3, 5], shape: [B]),
            "rec.h0": .float32(testValues(4 * B * 12, seed: 2, scale: 0.5), shape: [4, B, 12]),
        ])
    }

    @Test func linearFirstCopiesABorrowedInput() throws {
        // A first layer other than a recurrent one takes the borrowed input as an array of its own.
        let architecture = try Architecture(parsing: """
            {"format": 1, "input": {"kind": "features", "size": 3}, "layers": [
              {"name": "lin", "type": "linear", "in_features": 3, "out_features": 4},
              {"name": "g", "type": "gru", "input_size": 4, "hidden_size": 5}]}
            """)
        let shapes = ["lin.weight": [4, 3], "lin.bias": [4], "g.weight_ih_l0": [15, 4], "g.weight_hh_l0": [15, 5],
                      "g.bias_ih_l0": [15], "g.bias_hh_l0": [15]]
        var weights: [String: Tensor] = [:]
        for (seed, (name, shape)) in shapes.sorted(by: { $0.key < $1.key }).enumerated() {
            weights[name] = try .float32(testValues(shape.reduce(1, *), seed: UInt64(seed), scale: 0.5), shape: shape)
        }
        let model = try Model(architecture: architecture, weights: weights)
        let (B, T) = (3, 5)
        try checkAgainstRun(model, [
            "input": .float32(testValues(B * T * 3, seed: 9), shape: [B, T, 3]),
            "lengths": .int32([5, 2, 4], shape: [B]),
        ])
    }

    @Test(arguments: try goldenCaseNames())
    func goldenCase(_ name: String) throws {
        let golden = try GoldenCase(name)
        try checkAgainstRun(golden.model, golden.inputs)
    }
}
