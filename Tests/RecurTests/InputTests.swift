import Recur
import Testing

/// Inputs that do not fit the model are refused with invalid_input naming the tensor, and a
/// refused run leaves the model as it was.
@Suite struct InputTests {
    static let charLM: GoldenCase? = try? GoldenCase("char_lm")

    @Test func tokensAtTheVocabularyEdgesAreAccepted() throws {
        let model = try #require(Self.charLM).model
        let outputs = try model.run(["input": try .int32([0, 11, 0, 11], shape: [2, 2])])
        #expect(outputs[0].tensor.shape == [2, 2, 12])
        // Rows with the same ids give the same outputs: batch rows are independent.
        let y = try #require(outputs[0].tensor.floats)
        #expect(Array(y[0..<24]) == Array(y[24..<48]))
    }

    struct Bad: CustomTestStringConvertible, Sendable {
        let testDescription: String
        let inputs: @Sendable () throws -> [String: Tensor]
        let mentions: String
    }

    static let badInputs: [Bad] = [
        Bad(testDescription: "token id -1", inputs: { ["input": try .int64([0, -1], shape: [1, 2])] }, mentions: "input[0, 1]"),
        Bad(testDescription: "token id = vocab size", inputs: { ["input": try .int64([12, 0], shape: [1, 2])] }, mentions: "input[0, 0]"),
        Bad(testDescription: "float tokens", inputs: { ["input": try .float32([0, 1], shape: [1, 2])] }, mentions: "int32 or int64"),
        Bad(testDescription: "rank 3 tokens", inputs: { ["input": try .int64([0, 1], shape: [1, 2, 1])] }, mentions: "[B, T]"),
        Bad(testDescription: "no input", inputs: { [:] }, mentions: "input"),
        Bad(testDescription: "zero steps", inputs: { ["input": try .int64([], shape: [1, 0])] }, mentions: "at least 1"),
        Bad(testDescription: "zero batch", inputs: { ["input": try .int64([], shape: [0, 3])] }, mentions: "at least 1"),
        Bad(testDescription: "unknown input name", inputs: { ["input": try .int64([1], shape: [1, 1]), "lm.h1": try .float32([0], shape: [1])] }, mentions: "lm.h1"),
        Bad(testDescription: "length 0", inputs: { ["input": try .int64([1, 2], shape: [1, 2]), "lengths": try .int64([0], shape: [1])] }, mentions: "lengths[0]"),
        Bad(testDescription: "length past T", inputs: { ["input": try .int64([1, 2], shape: [1, 2]), "lengths": try .int64([3], shape: [1])] }, mentions: "lengths[0]"),
        Bad(testDescription: "lengths of another batch", inputs: { ["input": try .int64([1, 2], shape: [1, 2]), "lengths": try .int64([1, 1], shape: [2])] }, mentions: "lengths"),
        Bad(testDescription: "float lengths", inputs: { ["input": try .int64([1, 2], shape: [1, 2]), "lengths": try .float32([1], shape: [1])] }, mentions: "lengths"),
        Bad(testDescription: "state of another shape", inputs: { ["input": try .int64([1, 2], shape: [1, 2]), "lm.h0": try .float32([Float](repeating: 0, count: 15), shape: [1, 1, 15])] }, mentions: "lm.h0"),
        Bad(testDescription: "integer state", inputs: { ["input": try .int64([1, 2], shape: [1, 2]), "lm.c0": try .int32([Int32](repeating: 0, count: 16), shape: [1, 1, 16])] }, mentions: "lm.c0"),
    ]

    @Test(arguments: badInputs)
    func refused(_ bad: Bad) throws {
        let model = try #require(Self.charLM).model
        let error = #expect(throws: RecurError.self) { try model.run(try bad.inputs()) }
        #expect(error?.kind == .invalidInput)
        #expect(error?.message.contains(bad.mentions) == true, "“\(error?.message ?? "")” should mention \(bad.mentions)")
    }

    @Test func modelStillWorksAfterRefusals() throws {
        let golden = try #require(Self.charLM)
        let before = try golden.model.run(golden.inputs)
        for bad in Self.badInputs { _ = try? golden.model.run(try bad.inputs()) }
        #expect(try golden.model.run(golden.inputs) == before)
    }

    @Test func featureInputOfTheWrongWidthIsRefused() throws {
        let model = try GoldenCase("lstm_basic").model
        let error = #expect(throws: RecurError.self) { try model.run(["input": try .float32([0, 0, 0, 0], shape: [1, 1, 4])]) }
        #expect(error?.message.contains("[B, T, 5]") == true)
    }

    @Test func tensorShapeMustMatchItsData() {
        #expect(throws: RecurError.self) { try Tensor.float32([1, 2, 3], shape: [2, 2]) }
        #expect(throws: RecurError.self) { try Tensor.float32([], shape: [-1, 0]) }
        #expect(throws: RecurError.self) { try Tensor.float32([], shape: [Int.max, 2, 0]) }
    }
}
