import Recur
import Testing

/// `Model.run(_:outputInto:)`, the C API's path: the output written into the caller's memory, by a
/// last recurrent layer itself or copied from any other last layer, is `run`'s output bit for bit,
/// and `outputLayout` describes what `run` returns.
@Suite struct OutputIntoTests {
    /// The outputs through `outputInto`, over memory first filled with NaN (so a value the model left
    /// unwritten, such as a padding step's zero, shows), against `run`'s.
    func checkAgainstRun(_ model: Model, _ inputs: [String: Tensor]) throws {
        let request = try RunRequest(model: model, inputs: inputs)
        let expected = try model.run(inputs)
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

    @Test(arguments: try goldenCaseNames())
    func goldenCase(_ name: String) throws {
        let golden = try GoldenCase(name)
        try checkAgainstRun(golden.model, golden.inputs)
    }
}
