import Foundation
import Recur
import Testing
@testable import RecurTraining

/// The defaults that make long-range dependencies learnable: chrono gate biases, the cosine
/// schedule, automatic epochs with early stopping.
@Suite struct TrainingDefaultsTests {
    static let recurrentArchitecture = """
    {"format": 1, "input": {"kind": "features", "size": 3}, "layers": [
      {"name": "l", "type": "lstm", "input_size": 3, "hidden_size": 6, "num_layers": 2, "bidirectional": true},
      {"name": "g", "type": "gru", "input_size": 12, "hidden_size": 5},
      {"name": "p", "type": "pool", "mode": "last"},
      {"name": "o", "type": "linear", "in_features": 5, "out_features": 2}]}
    """

    @Test func chronoSetsOnlyTheKeepAndWriteGateBiases() throws {
        let network = try Network(Architecture(parsing: Self.recurrentArchitecture))
        let pytorch = network.initialParameters(seed: 4)
        let horizon = 50
        let chrono = network.initialParameters(seed: 4, memoryHorizon: horizon)
        var changed = Set<Int>()
        for layer in network.recurrentLayers {
            let H = layer.hidden
            for direction in layer.weights.joined() {
                let bih = try #require(direction.inputBias), bhh = try #require(direction.recurrentBias)
                for unit in 0..<H {
                    // lstm: i, f, g, o; gru: r, z, n — the keep gate is the second either way.
                    let keep = chrono[bih + H + unit]
                    #expect(keep >= 0 && keep <= Float(log(Double(horizon - 1))) + 1e-6)
                    #expect(chrono[bhh + H + unit] == 0)
                    changed.formUnion([bih + H + unit, bhh + H + unit])
                    if case .lstm = layer.cell {
                        #expect(chrono[bih + unit] == -keep && chrono[bhh + unit] == 0)
                        changed.formUnion([bih + unit, bhh + unit])
                    }
                }
            }
        }
        // Everything else is PyTorch's initialisation, value for value.
        for i in pytorch.indices where !changed.contains(i) { #expect(chrono[i] == pytorch[i], "parameter \(i)") }
        // Time scales spread over 1 … horizon: some units start with long memories.
        let lstm = network.recurrentLayers[0].weights[0][0]
        let keeps = (0..<6).map { chrono[lstm.inputBias! + 6 + $0] }
        #expect(keeps.max()! > 1.5)
    }

    @Test func cosineScheduleDecaysToATenth() {
        let cosine = TrainingOptions.Schedule.cosine
        #expect(abs(cosine.factor(step: 0, total: 100) - 1) < 1e-6)
        #expect(abs(cosine.factor(step: 99, total: 100) - 0.1) < 1e-6)
        #expect(abs(cosine.factor(step: 50, total: 101) - 0.55) < 1e-6)
        #expect(TrainingOptions.Schedule.constant.factor(step: 70, total: 100) == 1)
    }

    @Test func automaticEpochsReachTheMinimumSteps() {
        var options = TrainingOptions(task: .classify)
        #expect(options.plannedEpochs(stepsPerEpoch: 1000) == 10)
        #expect(options.plannedEpochs(stepsPerEpoch: 63) == 32)  // 2000 steps
        #expect(options.plannedEpochs(stepsPerEpoch: 1) == TrainingOptions.automaticMaximumEpochs)
        options.epochs = 3
        #expect(options.plannedEpochs(stepsPerEpoch: 63) == 3)
    }

    /// The label is the first token; 25–40 distractor tokens follow. With PyTorch's init the
    /// gradient from the last step to the first fades by about half per step: the same run with
    /// `initialization = .pytorch` stays below 0.95 (checked when this test was written).
    static func firstTokenData(_ count: Int, seed: UInt64) -> String {
        var random = SplitMix64(seed: seed)
        var lines: [String] = []
        for _ in 0..<count {
            let label = random.next(below: 2) == 0 ? "yes" : "no"
            let distractors = (0..<(25 + random.next(below: 16))).map { _ in "w\(random.next(below: 8))" }
            lines.append("\(label)\t\(label) \(distractors.joined(separator: " "))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    @Test func learnsALongRangeDependencyWithDefaultSettings() throws {
        let directory = try scratchDirectory()
        let train = directory.appendingPathComponent("train.tsv").path, valid = directory.appendingPathComponent("valid.tsv").path
        try Self.firstTokenData(320, seed: 1).write(toFile: train, atomically: true, encoding: .utf8)
        try Self.firstTokenData(100, seed: 2).write(toFile: valid, atomically: true, encoding: .utf8)
        let arch = """
        {"format": 1, "input": {"kind": "tokens", "vocab_size": "auto"}, "tokenizer": {"kind": "word"}, "layers": [
          {"name": "embed", "type": "embedding", "num_embeddings": "auto", "embedding_dim": 8},
          {"name": "rnn", "type": "lstm", "input_size": 8, "hidden_size": 16},
          {"name": "pool", "type": "pool", "mode": "last"},
          {"name": "head", "type": "linear", "in_features": 16, "out_features": "auto"}]}
        """
        var options = TrainingOptions(task: .classify)
        options.epochs = 30
        options.batchSize = 16
        let trainer = try Trainer(architecture: try JSONValue.parse(arch), trainPath: train, validPath: valid, options: options)
        let summary = try trainer.run(outputPath: train + ".safetensors", report: { _ in }, shouldStop: { false })
        #expect(try #require(summary.validAccuracy) >= 0.95)
    }
}
