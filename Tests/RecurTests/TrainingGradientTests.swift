import Foundation
import Recur
import Testing
@testable import RecurTraining

/// Backward passes against central finite differences of the loss, per parameter tensor, along
/// random directions (a directional derivative is one well-conditioned number even in float32).
@Suite struct TrainingGradientTests {
    static let architectures: [(String, String)] = [
        ("embedding + 2-layer bi-lstm + final_state + dropout + linear + softmax", """
        {"format": 1, "input": {"kind": "tokens", "vocab_size": 9}, "layers": [
          {"name": "embed", "type": "embedding", "num_embeddings": 9, "embedding_dim": 4},
          {"name": "enc", "type": "lstm", "input_size": 4, "hidden_size": 5, "num_layers": 2, "bidirectional": true},
          {"name": "pool", "type": "pool", "mode": "final_state"},
          {"name": "drop", "type": "dropout", "p": 0.3},
          {"name": "head", "type": "linear", "in_features": 10, "out_features": 3},
          {"name": "prob", "type": "softmax"}]}
        """),
        ("bi-gru tagger + log_softmax", """
        {"format": 1, "input": {"kind": "tokens", "vocab_size": 9}, "layers": [
          {"name": "embed", "type": "embedding", "num_embeddings": 9, "embedding_dim": 3},
          {"name": "tag", "type": "gru", "input_size": 3, "hidden_size": 4, "bidirectional": true},
          {"name": "head", "type": "linear", "in_features": 8, "out_features": 5},
          {"name": "logp", "type": "log_softmax"}]}
        """),
        ("rnn tanh, no bias, mean pool, tanh, linear", """
        {"format": 1, "input": {"kind": "features", "size": 3}, "layers": [
          {"name": "cell", "type": "rnn", "input_size": 3, "hidden_size": 5, "bias": false},
          {"name": "pool", "type": "pool", "mode": "mean"},
          {"name": "act", "type": "tanh"},
          {"name": "head", "type": "linear", "in_features": 5, "out_features": 3}]}
        """),
        ("rnn relu stacked, max pool, sigmoid, linear", """
        {"format": 1, "input": {"kind": "features", "size": 3}, "layers": [
          {"name": "cell", "type": "rnn", "input_size": 3, "hidden_size": 4, "num_layers": 2, "nonlinearity": "relu"},
          {"name": "pool", "type": "pool", "mode": "max"},
          {"name": "s", "type": "sigmoid"},
          {"name": "head", "type": "linear", "in_features": 4, "out_features": 2}]}
        """),
        ("lstm, last pool, relu, linear", """
        {"format": 1, "input": {"kind": "features", "size": 3}, "layers": [
          {"name": "a", "type": "lstm", "input_size": 3, "hidden_size": 4},
          {"name": "pool", "type": "pool", "mode": "last"},
          {"name": "r", "type": "relu"},
          {"name": "head", "type": "linear", "in_features": 4, "out_features": 3}]}
        """),
        ("gru per step, inner softmax and log_softmax, linear without bias", """
        {"format": 1, "input": {"kind": "features", "size": 3}, "layers": [
          {"name": "g", "type": "gru", "input_size": 3, "hidden_size": 4, "num_layers": 2},
          {"name": "sm", "type": "softmax"},
          {"name": "mid", "type": "linear", "in_features": 4, "out_features": 4, "bias": false},
          {"name": "lsm", "type": "log_softmax"},
          {"name": "head", "type": "linear", "in_features": 4, "out_features": 3}]}
        """),
    ]

    @Test(arguments: 0..<architectures.count)
    func backwardMatchesFiniteDifferences(_ index: Int) throws {
        let (label, json) = Self.architectures[index]
        let (network, parameters) = try trainingNetwork(json)
        let batch = randomBatch(network, batch: 5, steps: 6, seed: UInt64(index))
        try checkGradient(network, parameters, batch, label)
    }

    @Test func backwardMatchesFiniteDifferencesWithInitialStates() throws {
        let (network, parameters) = try trainingNetwork(Self.architectures[0].1)
        let batch = randomBatch(network, batch: 4, steps: 5, seed: 11, initialStates: true)
        try checkGradient(network, parameters, batch, "lstm with h0/c0")
    }

    private func checkGradient(_ network: Network, _ parameters: [Float], _ batch: Batch, _ label: String) throws {
        let (_, gradient) = Trainer.evaluate(network, parameters, batch, training: true, dropoutSeed: 99)
        var random = SplitMix64(seed: 5)
        for slot in network.slots {
            let direction = (0..<slot.count).map { _ in Float(random.nextUnit() < 0.5 ? -1 : 1) }
            var analytic = 0.0
            for i in 0..<slot.count { analytic += Double(gradient[slot.offset + i]) * Double(direction[i]) }
            let epsilon: Float = 5e-4
            var plus = parameters, minus = parameters
            for i in 0..<slot.count {
                plus[slot.offset + i] += epsilon * direction[i]
                minus[slot.offset + i] -= epsilon * direction[i]
            }
            let numeric = (meanLoss(network, plus, batch) - meanLoss(network, minus, batch)) / Double(2 * epsilon)
            #expect(abs(numeric - analytic) <= 2e-2 * abs(analytic) + 2e-3, "\(label): \(slot.name): finite differences \(numeric), backward \(analytic)")
        }
    }

    /// A batch split across two workers gives the one-worker loss and gradient (up to summation order).
    @Test func workerSplitAgreesWithOnePass() throws {
        let (network, parameters) = try trainingNetwork(Self.architectures[1].1)
        let batch = randomBatch(network, batch: 6, steps: 12, seed: 3)
        let (whole, gradient) = Trainer.evaluate(network, parameters, batch, training: false, dropoutSeed: 0)
        var sum = 0.0
        var parts = [Float](repeating: 0, count: gradient.count)
        for range in [0..<2, 2..<3, 3..<6] {
            let slice = batch.rows(range)
            let (result, g) = Trainer.evaluate(network, parameters, slice, training: false, dropoutSeed: 0)
            sum += result.loss
            // Each slice's gradient is of its own mean; weight it back to the whole batch's mean.
            let weight = Float(slice.targetCount) / Float(batch.targetCount)
            for i in parts.indices { parts[i] += g[i] * weight }
        }
        #expect(abs(sum - whole.loss) <= 1e-4 * abs(whole.loss))
        let worst = zip(parts, gradient).map { abs($0 - $1) / max(1e-4, abs($1)) }.max() ?? 0
        #expect(worst <= 1e-3)
    }
}
