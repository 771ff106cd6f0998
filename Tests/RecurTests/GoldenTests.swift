import Recur
import Testing

/// Every reference case computed with PyTorch (../shared/golden) must match: outputs and final
/// states within 1e-4 relative error, 1e-5 absolute floor.
@Suite struct GoldenTests {
    @Test func indexListsCases() throws {
        #expect(try goldenCaseNames().count >= 11)
    }

    @Test(arguments: try goldenCaseNames())
    func matchesPyTorch(_ name: String) throws {
        let golden = try GoldenCase(name)
        let outputs = try golden.model.run(golden.inputs)
        #expect(Set(outputs.map(\.name)) == Set(golden.expected.keys), "outputs of \(name)")
        for output in outputs {
            let expected = try #require(golden.expected[output.name], "\(name): unexpected output \(output.name)")
            let ratio = toleranceRatio(output.tensor, expected)
            #expect(ratio != nil && ratio! <= 1, "\(name).\(output.name): shape \(output.tensor.shape) vs \(expected.shape), error ratio \(ratio ?? .infinity)")
        }
    }
}
