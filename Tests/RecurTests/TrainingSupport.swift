import Foundation
import Recur
@testable import RecurTraining
import Testing

/// Tests/RecurTests/Fixtures.
let trainingFixtures: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

/// A network and PyTorch-style initial weights for an architecture written as JSON.
func trainingNetwork(_ json: String, seed: UInt64 = 7) throws -> (Network, [Float]) {
    let network = try Network(Architecture(parsing: json))
    return (network, network.initialParameters(seed: seed))
}

/// A batch of random inputs, lengths (the first row full) and targets for `network`.
func randomBatch(_ network: Network, batch: Int, steps: Int, seed: UInt64, initialStates: Bool = false) -> Batch {
    var random = SplitMix64(seed: seed)
    let lengths = (0..<batch).map { $0 == 0 ? steps : 1 + random.next(below: steps) }
    var targets: [Int32] = []
    if network.perStepOutput {
        for b in 0..<batch { for t in 0..<steps { targets.append(t < lengths[b] ? Int32(random.next(below: network.outputWidth)) : -1) } }
    } else {
        targets = (0..<batch).map { _ in Int32(random.next(below: network.outputWidth)) }
    }
    let tokens = network.tokenInput ? (0..<(batch * steps)).map { _ in Int32(random.next(below: network.inputWidth)) } : []
    let features = network.tokenInput ? [] : (0..<(batch * steps * network.inputWidth)).map { _ in Float(random.nextUnit() * 2 - 1) }
    let states = initialStates ? network.recurrentLayers.map { layer in
        var state = RecurrentState.zeros(layer, batch: batch)
        state.h = state.h.map { _ in Float(random.nextUnit() - 0.5) }
        state.c = state.c?.map { _ in Float(random.nextUnit() - 0.5) }
        return state
    } : nil
    return Batch(batch: batch, steps: steps, tokens: tokens, features: features, lengths: lengths, targets: targets, initialStates: states)
}

/// Mean cross-entropy of a pass.
func meanLoss(_ network: Network, _ parameters: [Float], _ batch: Batch, training: Bool = true) -> Double {
    let (result, _) = Trainer.evaluate(network, parameters, batch, training: training, dropoutSeed: 99, wantGradient: false)
    return result.loss / Double(result.targets)
}

/// Runs `texts`, as token ids of the model's own tokenizer padded to the longest with their lengths,
/// through `model`; returns the first output's values and the steps (the longest text's tokens).
func runTexts(_ model: Model, _ texts: [String]) throws -> (values: [Float], steps: Int) {
    let tokenizer = try #require(model.tokenizer)
    let encoded = texts.map(tokenizer.encode)
    let steps = encoded.map(\.count).max() ?? 1
    var ids = [Int64](repeating: 0, count: texts.count * steps)
    for (b, row) in encoded.enumerated() { for (t, id) in row.enumerated() { ids[b * steps + t] = Int64(id) } }
    let output = try model.run(["input": try .int64(ids, shape: [texts.count, steps]),
                                "lengths": try .int64(encoded.map { Int64($0.count) }, shape: [texts.count])])[0].tensor
    return (try #require(output.floats), steps)
}
