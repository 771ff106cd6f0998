import Foundation
import Recur
import Testing
@testable import RecurTraining

/// Loss and every parameter gradient against PyTorch's autograd on the same model and batch
/// (fixtures made by Fixtures/make_training_fixtures.py).
@Suite struct TrainingTorchTests {
    @Test(arguments: ["bilstm_classifier", "bigru_tagger", "gru_lm_states", "rnn_mean_pool", "lstm_states_max_pool"])
    func gradientsMatchPyTorch(_ name: String) throws {
        let file = try SafeTensorsFile(path: "\(trainingFixtures)/training/\(name).safetensors")
        let architecture = try Architecture(parsing: try #require(file.metadata["recur"]))
        let network = try Network(architecture)
        func tensor(_ name: String) throws -> Tensor {
            let entry = try #require(file.entry(name), "fixture lacks \(name)")
            return try file.tensor(entry)
        }
        var parameters = [Float](repeating: 0, count: network.parameterCount)
        for slot in network.slots {
            let values = try #require(try tensor(slot.name).floats)
            parameters.replaceSubrange(slot.offset..<(slot.offset + slot.count), with: values)
        }
        let input = try tensor("input")
        let (B, T) = (input.shape[0], input.shape[1])
        let states: [RecurrentState]? = file.entry("\(network.recurrentLayers[0].name).h0") == nil ? nil : try network.recurrentLayers.map { layer in
            var state = RecurrentState.zeros(layer, batch: B)
            state.h = try #require(try tensor("\(layer.name).h0").floats)
            if layer.hasCellState { state.c = try tensor("\(layer.name).c0").floats }
            return state
        }
        let batch = Batch(batch: B, steps: T,
                          tokens: network.tokenInput ? try #require(input.integers).map { Int32($0) } : [],
                          features: network.tokenInput ? [] : try #require(input.floats),
                          lengths: try #require(try tensor("lengths").integers).map { Int($0) },
                          targets: try #require(try tensor("targets").integers).map { Int32($0) },
                          initialStates: states)
        let (result, gradient) = Trainer.evaluate(network, parameters, batch, training: false, dropoutSeed: 0)
        let expectedLoss = try #require(try tensor("expected.loss").floats?.first)
        #expect(abs(result.loss / Double(result.targets) - Double(expectedLoss)) <= 1e-5 * max(1, Double(expectedLoss)))
        for slot in network.slots {
            let ours = try Tensor.float32(Array(gradient[slot.offset..<(slot.offset + slot.count)]), shape: slot.shape)
            let ratio = toleranceRatio(ours, try tensor("grad.\(slot.name)"), relative: 1e-3, absolute: 2e-6)
            #expect(ratio.map { $0 <= 1 } == true, "\(name): gradient of \(slot.name) differs from PyTorch (ratio \(String(describing: ratio)))")
        }
    }
}
