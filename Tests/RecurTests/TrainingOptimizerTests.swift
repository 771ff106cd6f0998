import Foundation
import Recur
import Testing
@testable import RecurTraining

/// The optimisers against PyTorch's update rules written out here in double precision.
@Suite struct TrainingOptimizerTests {
    let gradients: [[Float]] = [[0.5, -1, 2, 0], [0.25, 0.5, -3, 1], [-0.75, 0, 1, -2]]
    let start: [Float] = [1, -2, 0.5, 3]

    @Test func adamFollowsPyTorch() {
        var options = TrainingOptions(task: .classify)
        options.learningRate = 0.01
        let optimizer = Optimizer(options: options, count: 4)
        var parameters = start
        var w = start.map(Double.init), m = [Double](repeating: 0, count: 4), v = m
        for (t, g) in gradients.enumerated() {
            optimizer.update(&parameters, gradient: g, clip: 0)
            for i in 0..<4 {
                // torch.optim.Adam: m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ), w −= lr·m̂/(√v̂ + ε)
                m[i] = 0.9 * m[i] + 0.1 * Double(g[i])
                v[i] = 0.999 * v[i] + 0.001 * Double(g[i]) * Double(g[i])
                let mHat = m[i] / (1 - pow(0.9, Double(t + 1))), vHat = v[i] / (1 - pow(0.999, Double(t + 1)))
                w[i] -= 0.01 * mHat / (vHat.squareRoot() + 1e-8)
            }
        }
        for i in 0..<4 { #expect(abs(Double(parameters[i]) - w[i]) <= 1e-6, "parameter \(i)") }
    }

    @Test func sgdWithMomentumFollowsPyTorch() {
        var options = TrainingOptions(task: .classify)
        options.optimizer = .sgd
        options.learningRate = 0.1
        let optimizer = Optimizer(options: options, count: 4)
        var parameters = start
        var w = start.map(Double.init), buffer = [Double](repeating: 0, count: 4)
        for g in gradients {
            optimizer.update(&parameters, gradient: g, clip: 0)
            for i in 0..<4 {
                // torch.optim.SGD(momentum=0.9): b = 0.9·b + g (b = g at the first step), w −= lr·b
                buffer[i] = 0.9 * buffer[i] + Double(g[i])
                w[i] -= 0.1 * buffer[i]
            }
        }
        for i in 0..<4 { #expect(abs(Double(parameters[i]) - w[i]) <= 1e-6, "parameter \(i)") }
    }

    @Test func clippingScalesToTheGlobalNorm() {
        var options = TrainingOptions(task: .classify)
        options.optimizer = .sgd
        options.learningRate = 1
        let optimizer = Optimizer(options: options, count: 2)
        var parameters: [Float] = [0, 0]
        optimizer.update(&parameters, gradient: [3, 4], clip: 1)  // norm 5 → scaled to norm 1
        #expect(abs(parameters[0] + 0.6) <= 1e-5 && abs(parameters[1] + 0.8) <= 1e-5)
        let second = Optimizer(options: options, count: 2)
        var unclipped: [Float] = [0, 0]
        second.update(&unclipped, gradient: [0.3, 0.4], clip: 1)  // below the limit: untouched
        #expect(abs(unclipped[0] + 0.3) <= 1e-6 && abs(unclipped[1] + 0.4) <= 1e-6)
    }
}

/// Features data (safetensors x, y, lengths) for classify and tag.
@Suite struct TrainingFeaturesTests {
    private func write(_ tensors: [(String, Tensor)], _ name: String) throws -> String {
        let path = try scratchDirectory().appendingPathComponent(name).path
        try SafeTensorsWriter.write(tensors.map { (name: $0.0, tensor: $0.1) }, to: path)
        return path
    }

    /// Label = whether feature 0 summed over the valid steps is positive.
    private func data(_ n: Int, seed: UInt64, perStep: Bool) throws -> [(String, Tensor)] {
        var random = SplitMix64(seed: seed)
        let (T, F) = (8, 3)
        var x = [Float](repeating: 0, count: n * T * F), y: [Int64] = [], lengths: [Int64] = []
        for i in 0..<n {
            let length = 3 + random.next(below: T - 2)
            lengths.append(Int64(length))
            var sum: Float = 0
            for t in 0..<length {
                for f in 0..<F { x[(i * T + t) * F + f] = Float(random.nextUnit() * 2 - 1) }
                sum += x[(i * T + t) * F]
                if perStep { y.append(sum > 0 ? 1 : 0) }
            }
            if perStep { y.append(contentsOf: [Int64](repeating: 0, count: T - length)) } else { y.append(sum > 0 ? 1 : 0) }
        }
        return [("x", try .float32(x, shape: [n, T, F])), ("y", try .int64(y, shape: perStep ? [n, T] : [n])),
                ("lengths", try .int64(lengths, shape: [n]))]
    }

    @Test(arguments: [false, true])
    func learnsFromFeatures(_ perStep: Bool) throws {
        let train = try write(try data(600, seed: 1, perStep: perStep), "train-\(perStep)")
        let valid = try write(try data(200, seed: 2, perStep: perStep), "valid-\(perStep)")
        let arch = """
        {"format": 1, "input": {"kind": "features", "size": 3}, "layers": [
          {"name": "r", "type": "gru", "input_size": 3, "hidden_size": 16}\(perStep ? "" : ", {\"name\": \"p\", \"type\": \"pool\", \"mode\": \"last\"}"),
          {"name": "o", "type": "linear", "in_features": 16, "out_features": "auto"}]}
        """
        var options = TrainingOptions(task: perStep ? .tag : .classify)
        options.epochs = 15
        options.learningRate = 0.01
        let trainer = try Trainer(architecture: try JSONValue.parse(arch), trainPath: train, validPath: valid, options: options)
        let summary = try trainer.run(outputPath: train + ".safetensors", report: { _ in }, shouldStop: { false })
        #expect(try #require(summary.validAccuracy) >= 0.9)
        #expect(try Model(path: train + ".safetensors").outputShape == (perStep ? .sequence(features: 2) : .pooled(features: 2)))
    }

    @Test func wrongTensorShapesAreErrors() throws {
        let arch = try JSONValue.parse("""
        {"format": 1, "input": {"kind": "features", "size": 3}, "layers": [
          {"name": "r", "type": "rnn", "input_size": 3, "hidden_size": 4}, {"name": "p", "type": "pool", "mode": "mean"},
          {"name": "o", "type": "linear", "in_features": 4, "out_features": "auto"}]}
        """)
        let good = try data(4, seed: 3, perStep: false)
        let wrongWidth = try write([("x", try .float32([Float](repeating: 0, count: 4 * 8 * 2), shape: [4, 8, 2])), good[1]], "width")
        let perStepY = try write([good[0], ("y", try .int64([Int64](repeating: 0, count: 32), shape: [4, 8]))], "y")
        let badLength = try write([good[0], good[1], ("lengths", try .int64([1, 2, 9, 1], shape: [4]))], "lengths")
        let negative = try write([good[0], ("y", try .int64([0, -1, 1, 0], shape: [4]))], "negative")
        for path in [wrongWidth, perStepY, badLength, negative] {
            #expect(throws: RecurError.self, "\(path)") {
                _ = try Trainer(architecture: arch, trainPath: path, validPath: nil, options: TrainingOptions(task: .classify))
            }
        }
    }
}
