import Foundation
import Recur
import Testing
@testable import RecurTraining

/// Training as `recur train` runs it: data files in, a model file out that the engine loads.
@Suite struct TrainingEndToEndTests {
    static let classifierArchitecture = """
    {"format": 1, "input": {"kind": "tokens", "vocab_size": "auto"},
     "tokenizer": {"kind": "word", "lowercase": true},
     "layers": [
      {"name": "embed", "type": "embedding", "num_embeddings": "auto", "embedding_dim": 8},
      {"name": "enc", "type": "gru", "input_size": 8, "hidden_size": 12},
      {"name": "pool", "type": "pool", "mode": "final_state"},
      {"name": "head", "type": "linear", "in_features": 12, "out_features": "auto"},
      {"name": "prob", "type": "softmax"}]}
    """

    /// "A , not B" takes A's label, "not A but B" takes B's: the same words, order decides.
    static func wordOrderData(_ count: Int, seed: UInt64) -> String {
        var random = SplitMix64(seed: seed)
        let good = ["good", "great", "fine"], bad = ["bad", "awful", "poor"]
        var lines: [String] = []
        for _ in 0..<count {
            let positive = random.next(below: 2) == 0
            let decisive = (positive ? good : bad)[random.next(below: 3)], other = (positive ? bad : good)[random.next(below: 3)]
            let text = random.next(below: 2) == 0 ? "it was \(decisive) , not \(other)" : "it was not \(other) but \(decisive)"
            lines.append("\(positive ? "pos" : "neg")\t\(text)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func options(_ task: TrainingTask, epochs: Int, seed: UInt64) -> TrainingOptions {
        var options = TrainingOptions(task: task)
        options.epochs = epochs
        options.batchSize = 16
        options.seed = seed
        options.learningRate = 0.01
        return options
    }

    @Test func learnsWordOrderAndWritesALoadableModel() throws {
        let train = try temporaryFile("order-train.tsv", Self.wordOrderData(400, seed: 1))
        let valid = try temporaryFile("order-valid.tsv", Self.wordOrderData(100, seed: 2))
        let out = train + ".safetensors"
        let trainer = try Trainer(architecture: try JSONValue.parse(Self.classifierArchitecture), trainPath: train, validPath: valid,
                                  options: options(.classify, epochs: 12, seed: 3))
        let summary = try trainer.run(outputPath: out, report: { _ in }, shouldStop: { false })
        #expect(try #require(summary.validAccuracy) >= 0.95)

        // The engine loads the file as it is and, through its own tokenizer, classifies held-out text.
        let model = try Model(path: out)
        #expect(model.architecture.labels == ["neg", "pos"])
        let texts = ["it was great , not awful", "it was not fine but poor", "it was bad , not good", "it was not awful but great"]
        let expected = [1, 0, 0, 1]
        let (probabilities, _) = try runTexts(model, texts)
        for b in 0..<texts.count {
            #expect(probabilities[b * 2 + expected[b]] > 0.5, "\(texts[b])")
        }
    }

    @Test func sameSeedSameBytesOtherSeedOtherBytes() throws {
        let train = try temporaryFile("det-train.tsv", Self.wordOrderData(120, seed: 4))
        func bytes(seed: UInt64) throws -> [UInt8] {
            let trainer = try Trainer(architecture: try JSONValue.parse(Self.classifierArchitecture), trainPath: train, validPath: nil,
                                      options: options(.classify, epochs: 2, seed: seed))
            let out = train + ".\(seed).safetensors"
            _ = try trainer.run(outputPath: out, report: { _ in }, shouldStop: { false })
            return Array(try Data(contentsOf: URL(fileURLWithPath: out)))
        }
        let first = try bytes(seed: 5)
        #expect(first == (try bytes(seed: 5)))
        #expect(first != (try bytes(seed: 6)))
    }

    @Test func stopRequestKeepsAModel() throws {
        let train = try temporaryFile("stop-train.tsv", Self.wordOrderData(200, seed: 7))
        let out = train + ".safetensors"
        let trainer = try Trainer(architecture: try JSONValue.parse(Self.classifierArchitecture), trainPath: train, validPath: nil,
                                  options: options(.classify, epochs: 50, seed: 1))
        var steps = 0
        let summary = try trainer.run(outputPath: out, report: { if case .step = $0 { steps += 1 } }, shouldStop: { steps >= 3 })
        #expect(summary.interrupted)
        #expect(steps == 3)
        _ = try Model(path: out)
    }

    @Test func vocabularyIsPaddingUnknownThenByFrequency() throws {
        // Counts: b 3, a 2, c 2 (a appears first), d 1.
        let train = try temporaryFile("vocab.txt", "b a c b a c b d")
        let arch = """
        {"format": 1, "input": {"kind": "tokens", "vocab_size": "auto"}, "tokenizer": {"kind": "word"}, "layers": [
          {"name": "e", "type": "embedding", "num_embeddings": "auto", "embedding_dim": 2},
          {"name": "r", "type": "rnn", "input_size": 2, "hidden_size": 3},
          {"name": "o", "type": "linear", "in_features": 3, "out_features": "auto"}]}
        """
        let trainer = try Trainer(architecture: try JSONValue.parse(arch), trainPath: train, validPath: nil, options: options(.lm, epochs: 1, seed: 0))
        #expect(trainer.architecture.vocabulary == ["<pad>", "<unk>", "b", "a", "c", "d"])
        #expect(trainer.architecture.input == .tokens(vocabularySize: 6))
        #expect(trainer.network.outputWidth == 6)
    }

    /// Truncated BPTT with state carried across chunks learns a periodic character stream.
    @Test func languageModelLearnsAPeriodicStream() throws {
        let text = String(repeating: "abcdefg", count: 300)
        let train = try temporaryFile("periodic.txt", text), valid = try temporaryFile("periodic-valid.txt", String(text.prefix(700)))
        let arch = """
        {"format": 1, "input": {"kind": "tokens", "vocab_size": "auto"}, "tokenizer": {"kind": "char"}, "layers": [
          {"name": "e", "type": "embedding", "num_embeddings": "auto", "embedding_dim": 6},
          {"name": "r", "type": "gru", "input_size": 6, "hidden_size": 12},
          {"name": "o", "type": "linear", "in_features": 12, "out_features": "auto"}]}
        """
        var options = options(.lm, epochs: 6, seed: 2)
        options.bptt = 5
        options.batchSize = 4
        let trainer = try Trainer(architecture: try JSONValue.parse(arch), trainPath: train, validPath: valid, options: options)
        let summary = try trainer.run(outputPath: train + ".safetensors", report: { _ in }, shouldStop: { false })
        #expect(try #require(summary.validAccuracy) >= 0.99)
        #expect(try Model(path: train + ".safetensors").canGenerate)
    }

    @Test func givenLabelsKeepTheirOrder() throws {
        let train = try temporaryFile("labels.tsv", "pos\tgood\nneg\tbad\n")
        guard case .object(var root) = try JSONValue.parse(Self.classifierArchitecture) else { return }
        root["labels"] = .array([.string("pos"), .string("neg")])
        let trainer = try Trainer(architecture: .object(root), trainPath: train, validPath: nil, options: options(.classify, epochs: 1, seed: 0))
        #expect(trainer.architecture.labels == ["pos", "neg"])
        let other = try temporaryFile("labels-other.tsv", "meh\tgood\n")
        #expect(throws: RecurError.self) { _ = try Trainer(architecture: .object(root), trainPath: other, validPath: nil, options: options(.classify, epochs: 1, seed: 0)) }
    }

    @Test func lmChunksPredictTheNextTokenOfEachStream() {
        let ids: [Int32] = Array(10..<31)  // 21 tokens: 2 streams of 10 steps
        let batches = Batcher.streamChunks(ids, streams: 2, bptt: 4)
        #expect(batches.map(\.steps) == [4, 4, 2])
        #expect(batches[0].tokens == [10, 11, 12, 13, 20, 21, 22, 23])
        #expect(batches[0].targets == [11, 12, 13, 14, 21, 22, 23, 24])
        #expect(batches[2].tokens == [18, 19, 28, 29])
        #expect(batches[2].targets == [19, 20, 29, 30])
    }

    @Test func badDataIsAnErrorNamingTheLine() throws {
        let noTab = try temporaryFile("bad1.tsv", "pos\tfine\nno tab here\n")
        let error = #expect(throws: RecurError.self) {
            _ = try Trainer(architecture: try JSONValue.parse(Self.classifierArchitecture), trainPath: noTab, validPath: nil, options: options(.classify, epochs: 1, seed: 0))
        }
        #expect(error?.message.contains("bad1.tsv:2") == true)
        let tags = try temporaryFile("bad2.tsv", "a b c\tX Y\n")
        let tagger = """
        {"format": 1, "input": {"kind": "tokens", "vocab_size": "auto"}, "tokenizer": {"kind": "word"}, "layers": [
          {"name": "e", "type": "embedding", "num_embeddings": "auto", "embedding_dim": 2},
          {"name": "r", "type": "gru", "input_size": 2, "hidden_size": 3},
          {"name": "o", "type": "linear", "in_features": 3, "out_features": "auto"}]}
        """
        #expect(throws: RecurError.self) { _ = try Trainer(architecture: try JSONValue.parse(tagger), trainPath: tags, validPath: nil, options: options(.tag, epochs: 1, seed: 0)) }
        let train = try temporaryFile("ok.tsv", "pos\tfine\nneg\tbad\n"), valid = try temporaryFile("unknown-label.tsv", "meh\tso so\n")
        #expect(throws: RecurError.self) { _ = try Trainer(architecture: try JSONValue.parse(Self.classifierArchitecture), trainPath: train, validPath: valid, options: options(.classify, epochs: 1, seed: 0)) }
        // A classifier architecture cannot learn a per-step task.
        #expect(throws: RecurError.self) { _ = try Trainer(architecture: try JSONValue.parse(Self.classifierArchitecture), trainPath: train, validPath: nil, options: options(.lm, epochs: 1, seed: 0)) }
    }
}

/// The training forward pass computes what PyTorch computed for every golden case: the loss of
/// random targets taken on PyTorch's output equals the trainer's loss.
@Suite struct TrainingForwardTests {
    @Test(arguments: try goldenCaseNames())
    func lossMatchesPyTorchOutput(_ name: String) throws {
        let golden = try GoldenCase(name)
        let network = try Network(golden.model.architecture)
        let file = try SafeTensorsFile(path: goldenDirectory + "/" + name + "/model.safetensors")
        var parameters = [Float](repeating: 0, count: network.parameterCount)
        for slot in network.slots {
            let entry = try #require(file.entry(slot.name))
            let values = try #require(try file.tensor(entry).floats)
            parameters.replaceSubrange(slot.offset..<(slot.offset + slot.count), with: values)
        }
        let input = try #require(golden.inputs["input"])
        let (B, T) = (input.shape[0], input.shape[1])
        let lengths = golden.inputs["lengths"]?.integers?.map { Int($0) } ?? [Int](repeating: T, count: B)
        let states: [RecurrentState]? = golden.inputs.keys.contains { $0.hasSuffix(".h0") } ? try network.recurrentLayers.map { layer in
            var state = RecurrentState.zeros(layer, batch: B)
            state.h = try #require(golden.inputs["\(layer.name).h0"]?.floats)
            if layer.hasCellState { state.c = golden.inputs["\(layer.name).c0"]?.floats }
            return state
        } : nil
        let output = try #require(golden.expected["output"]?.floats)
        let classes = network.outputWidth
        var random = SplitMix64(seed: 1)
        var targets: [Int32] = []
        var expectedLoss = 0.0
        let rows = network.perStepOutput ? B * T : B
        let last = golden.model.architecture.layers.last?.type
        for row in 0..<rows {
            if network.perStepOutput && row % T >= lengths[row / T] { targets.append(-1); continue }
            let target = random.next(below: classes)
            targets.append(Int32(target))
            let values = output[(row * classes)..<((row + 1) * classes)].map(Double.init)
            switch last {
            case "softmax": expectedLoss -= log(values[target])
            case "log_softmax": expectedLoss -= values[target]
            default:
                let m = values.max() ?? 0
                expectedLoss += m + log(values.reduce(0) { $0 + exp($1 - m) }) - values[target]
            }
        }
        let batch = Batch(batch: B, steps: T, tokens: network.tokenInput ? try #require(input.integers).map { Int32($0) } : [],
                          features: network.tokenInput ? [] : try #require(input.floats), lengths: lengths, targets: targets, initialStates: states)
        let (result, _) = Trainer.evaluate(network, parameters, batch, training: false, dropoutSeed: 0, wantGradient: false)
        #expect(abs(result.loss - expectedLoss) <= 1e-4 * max(1, abs(expectedLoss)), "\(name): trainer loss \(result.loss), from PyTorch's output \(expectedLoss)")
    }
}
