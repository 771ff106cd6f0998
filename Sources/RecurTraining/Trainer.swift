import CRecurKernels
import Dispatch
import Foundation
import Recur
import Synchronization

/// Settings of `recur train` (training.md).
public struct TrainingOptions: Sendable {
    public enum Optimizer: String, Sendable, CaseIterable { case adam, sgd }

    public var task: TrainingTask
    /// Passes over the data; nil = automatic (`plannedEpochs`): at least 10 and at least
    /// `automaticMinimumSteps` optimiser steps, ending early once validation stops improving.
    public var epochs: Int?
    public var batchSize = 32
    /// nil: 0.002 for Adam, 0.05 for SGD.
    public var learningRate: Float?
    public var optimizer = Optimizer.adam
    /// Global gradient norm limit; 0 = no clipping.
    public var clip: Float = 5
    /// Steps per truncated-BPTT chunk (lm).
    public var bptt = 64
    public var seed: UInt64 = 0
    /// How the weights start.
    public var initialization = Initialization.automatic
    /// How the learning rate changes over the planned steps.
    public var schedule = Schedule.cosine

    public enum Schedule: String, Sendable, CaseIterable {
        /// The learning rate throughout (PyTorch's optimiser without a scheduler).
        case constant
        /// Cosine decay from the learning rate to a tenth of it at the last planned step.
        case cosine

        /// The learning-rate factor at `step` (0-based) of `total`.
        func factor(step: Int, total: Int) -> Float {
            switch self {
            case .constant: return 1
            case .cosine:
                let progress = min(Double(step) / Double(max(total - 1, 1)), 1)
                return Float(0.1 + 0.45 * (1 + cos(Double.pi * progress)))
            }
        }
    }

    public enum Initialization: String, Sendable, CaseIterable {
        /// PyTorch's defaults exactly (every recurrent weight and bias uniform ±1/√H).
        case pytorch
        /// PyTorch's defaults, then the chrono gate biases (`Network.initialParameters`) for the
        /// longest training sequence (lm: --bptt), so long-range dependencies are learnt.
        case chrono
        /// chrono for classify, whose one label may hang on any step however far back; pytorch
        /// for lm and tag, whose targets mostly hang on recent steps and which chrono's nearly
        /// closed input gates slow down (a character lm: 2.0 instead of 1.1 bits after an epoch).
        case automatic = "auto"

        func resolved(for task: TrainingTask) -> Initialization {
            self != .automatic ? self : task == .classify ? .chrono : .pytorch
        }
    }

    public init(task: TrainingTask) { self.task = task }

    var effectiveLearningRate: Float { learningRate ?? (optimizer == .adam ? 0.002 : 0.05) }

    /// Optimiser steps automatic epochs reach at least: small data sets get more passes, since
    /// what a recurrent network learns depends on the number of updates more than on passes.
    static let automaticMinimumSteps = 2000
    /// Automatic epochs never exceed this.
    static let automaticMaximumEpochs = 200
    /// Automatic epochs with validation data end after `patience` epochs without a validation loss
    /// at least `meaningfulImprovement` nats below the best: at least 5 epochs and 1000 steps, so
    /// a plateau before a long-range dependency is found does not end training.
    static let meaningfulImprovement = 1e-3
    static func patience(stepsPerEpoch: Int) -> Int { max(5, (1000 + stepsPerEpoch - 1) / max(stepsPerEpoch, 1)) }

    /// Epochs to run for `stepsPerEpoch` optimiser steps per epoch.
    func plannedEpochs(stepsPerEpoch: Int) -> Int {
        if let epochs { return epochs }
        let forSteps = (TrainingOptions.automaticMinimumSteps + stepsPerEpoch - 1) / max(stepsPerEpoch, 1)
        return min(max(10, forSteps), TrainingOptions.automaticMaximumEpochs)
    }
}

/// What training reports while it runs.
public enum TrainingEvent: Sendable {
    /// After each optimiser step. loss: mean cross-entropy of the step (nats).
    case step(epoch: Int, epochs: Int, step: Int, steps: Int, loss: Double, tokensPerSecond: Double, secondsLeft: Double)
    /// After each epoch: training loss and accuracy over the epoch, validation when given, and
    /// whether the model file was written (best so far).
    case epoch(epoch: Int, trainLoss: Double, trainAccuracy: Double, validLoss: Double?, validAccuracy: Double?, saved: Bool)
}

/// How training ended.
public struct TrainingSummary: Sendable {
    public let epochsCompleted: Int
    public let interrupted: Bool
    /// The written model's validation loss (nats per target), when validation data was given.
    public let validLoss: Double?
    public let validAccuracy: Double?
    public let trainLoss: Double
    /// The fastest optimiser step (forward, backward, update) in seconds: the least disturbed
    /// measurement of training speed on a shared machine.
    public let fastestStepSeconds: Double
}

/// Backpropagation-through-time training of an architecture on a data file.
public final class Trainer {
    public let options: TrainingOptions
    /// The architecture with "auto" sizes filled, vocabulary, tokenizer and labels: what the model file carries.
    public let architecture: Architecture
    let network: Network
    private let train: Dataset
    private let valid: Dataset?
    /// The current parameters (flat, `network.slots` order); after `run`, the ones written.
    var parameters: [Float]

    /// Loads and checks the data, fills the architecture's "auto" sizes, initialises the weights.
    public init(architecture json: JSONValue, trainPath: String, validPath: String?, options: TrainingOptions) throws(RecurError) {
        self.options = options
        let limit = 1 << 24
        guard (1...limit).contains(options.epochs ?? 1), (1...limit).contains(options.batchSize), (1...limit).contains(options.bptt) else {
            throw RecurError(.invalidArgument, "epochs, batch size and bptt must be in 1 … \(limit)")
        }
        guard options.effectiveLearningRate > 0, options.effectiveLearningRate.isFinite, options.clip >= 0 else {
            throw RecurError(.invalidArgument, "the learning rate must be positive and the clip norm non-negative")
        }
        guard case .object(var root) = json, case .object(var input)? = root["input"] else {
            throw RecurError(.format, "architecture: not a JSON object with an input object")
        }
        var layers = root["layers"]?.arrayValue ?? []
        let lastLinear = layers.lastIndex { $0["type"]?.stringValue == "linear" }
        var classes: Int?
        let train: Dataset, valid: Dataset?
        if input["kind"]?.stringValue == "features" {
            guard options.task != .lm else { throw RecurError(.invalidInput, "task lm needs text data and a tokens input") }
            guard let size = input["size"]?.intValue, size >= 1 else { throw RecurError(.format, "architecture: input.size must be a positive integer") }
            let (t, c) = try DataReader.features(trainPath, task: options.task, featureSize: size)
            train = t
            classes = c
            if let validPath {
                let (v, validClasses) = try DataReader.features(validPath, task: options.task, featureSize: size)
                valid = v
                classes = max(c, validClasses)
            } else {
                valid = nil
            }
        } else {
            // The vocabulary puts unknown at id 1, so the written tokenizer says so whatever ARCH said.
            var tokenizer = try root["tokenizer"].map { json throws(RecurError) in try Tokenizer.Configuration(json: json) }
                ?? Tokenizer.Configuration(kind: options.task == .lm ? .char : .word)
            tokenizer.unknownID = 1
            root["tokenizer"] = tokenizer.json
            let corpus = try DataReader.corpus(trainPath, task: options.task, tokenizer: tokenizer)
            let limit = input["vocab_size"]?.intValue
            if let limit, limit < 2 { throw RecurError(.format, "architecture: input.vocab_size must be at least 2 (padding and unknown) or \"auto\", found \(limit)") }
            let vocabulary = DataReader.vocabulary(corpus, limit: limit)
            // ARCH's own `labels` fix the class order; otherwise the data's labels, sorted.
            let given = root["labels"]?.arrayValue?.compactMap(\.stringValue)
            let labels = options.task == .lm ? [] : given ?? DataReader.labels(corpus)
            train = try DataReader.dataset(corpus, task: options.task, vocabulary: vocabulary, labels: labels, source: trainPath)
            if let validPath {
                let validCorpus = try DataReader.corpus(validPath, task: options.task, tokenizer: tokenizer)
                valid = try DataReader.dataset(validCorpus, task: options.task, vocabulary: vocabulary, labels: labels, source: validPath)
            } else {
                valid = nil
            }
            let vocabularySize = limit ?? vocabulary.count
            if input["vocab_size"]?.stringValue == "auto" { input["vocab_size"] = .int(vocabularySize) }
            root["input"] = .object(input)
            for i in layers.indices where layers[i]["type"]?.stringValue == "embedding" && layers[i]["num_embeddings"]?.stringValue == "auto" {
                layers[i] = Trainer.setting(layers[i], "num_embeddings", vocabularySize)
            }
            root["vocab"] = .array(vocabulary.map(JSONValue.string))
            if options.task == .lm {
                classes = vocabularySize
            } else {
                root["labels"] = .array(labels.map(JSONValue.string))
                classes = labels.count
            }
        }
        if let lastLinear, let classes, layers[lastLinear]["out_features"]?.stringValue == "auto" {
            layers[lastLinear] = Trainer.setting(layers[lastLinear], "out_features", classes)
        }
        root["layers"] = .array(layers)
        let architecture = try Architecture(json: .object(root))
        try Trainer.checkParameterCount(architecture)
        let network = try Network(architecture)
        guard network.parameterCount > 0 else { throw RecurError(.format, "the architecture has no parameters to train") }
        // The engine's own checks (every shape, every name) on the initial weights.
        let horizon: Int = switch train {
        case .sequences(let examples): examples.map(\.length).max() ?? 1
        case .stream: options.bptt
        }
        parameters = network.initialParameters(seed: options.seed, memoryHorizon: options.initialization.resolved(for: options.task) == .chrono ? horizon : nil)
        _ = try Model(architecture: architecture, weights: Dictionary(uniqueKeysWithValues: try network.namedTensors(parameters).map { ($0.name, $0.tensor) }))
        switch (options.task, network.perStepOutput) {
        case (.classify, true): throw RecurError(.format, "task classify needs a pooled output [B, C] (add a pool layer)")
        case (.lm, false), (.tag, false): throw RecurError(.format, "task \(options.task.rawValue) needs a per-step output [B, T, C] (no pool layer)")
        default: break
        }
        if let classes, classes > network.outputWidth {
            throw RecurError(.format, "the data has \(classes) classes but the output has \(network.outputWidth) (use \"auto\" for the last linear's out_features)")
        }
        if case .tokens(let v) = architecture.input, case .stream(let ids) = train, let bad = ids.first(where: { Int($0) >= v }) {
            throw RecurError(.format, "token id \(bad) does not fit input.vocab_size \(v)")
        }
        // Text data's ids index the vocabulary; the embedding table must have a row for each.
        if let vocabulary = architecture.vocabulary, let embedding = architecture.layers.first(where: { $0.type == "embedding" }),
           let rows = try? embedding.integer("num_embeddings"), rows < vocabulary.count {
            throw RecurError(.format, "layer '\(embedding.name)': num_embeddings is \(rows), but the vocabulary has \(vocabulary.count) tokens (use \"auto\")")
        }
        self.architecture = architecture
        self.network = network
        self.train = train
        self.valid = valid
    }

    /// Checks every layer's settings as the model loader does and refuses a model whose parameters
    /// could not be allocated, before anything is sized from them.
    private static func checkParameterCount(_ architecture: Architecture) throws(RecurError) {
        var total = 0
        for config in architecture.layers {
            // Types the registry does not know are the network's to refuse, by name.
            guard let kind = LayerRegistry.shared.kind(named: config.type) else { continue }
            for declaration in try kind.parameters(config) {
                guard let count = Tensor.elementCount(declaration.shape),
                      case (let sum, false) = total.addingReportingOverflow(count), sum <= Model.maxElementsPerBuffer
                else {
                    throw RecurError(.outOfMemory, "layer '\(config.name)': the model's parameters (\(config.name).\(declaration.suffix) \(declaration.shape)) are over the limit of \(Model.maxElementsPerBuffer) floats")
                }
                total = sum
            }
        }
    }

    private static func setting(_ layer: JSONValue, _ key: String, _ value: Int) -> JSONValue {
        guard case .object(var fields) = layer else { return layer }
        fields[key] = .int(value)
        return .object(fields)
    }

    /// Number of trained float parameters.
    public var parameterCount: Int { network.parameterCount }
    /// Tokens (steps) in the training data.
    public var trainingTokens: Int { train.tokenCount }

    /// Trains for the configured epochs, writing the best model (by validation loss, else the last)
    /// to `outputPath` after each epoch. `shouldStop` is polled after every step: when it returns
    /// true, training ends and the file holds the best model so far (the current one if none was written).
    public func run(outputPath: String, report: (TrainingEvent) -> Void, shouldStop: () -> Bool) throws(RecurError) -> TrainingSummary {
        rt_retain_freed_memory()  // every step frees and reallocates the same buffers
        let optimizer = Optimizer(options: options, count: network.parameterCount)
        var random = SplitMix64(seed: options.seed ^ 0xD1B5_4A32_D192_ED03)
        var bestValidLoss = Double.infinity
        var best: (valid: Double?, accuracy: Double?, train: Double) = (nil, nil, .infinity)
        var written = false
        var savedParameters = parameters
        defer { parameters = savedParameters }
        var step = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var tokensSeen = 0
        var epochsCompleted = 0
        var fastest = Double.infinity
        let featureWidth = network.tokenInput ? 0 : network.inputWidth
        var lastTrainLoss = Double.nan
        var epochs = options.epochs ?? 1  // automatic: set once the first epoch's batches are known
        var epoch = 0
        var meaningfulBest = Double.infinity, epochsWithoutImprovement = 0
        while epoch < epochs {
            epoch += 1
            let batches = epochBatches(train, random: &random, featureWidth: featureWidth)
            if epoch == 1 { epochs = options.plannedEpochs(stepsPerEpoch: batches.count) }
            var states: [RecurrentState]? = nil
            var loss = 0.0, targets = 0, correct = 0
            var stopped = false
            for (index, var batch) in batches.enumerated() {
                let stepStart = DispatchTime.now().uptimeNanoseconds
                if options.task == .lm { batch.initialStates = states }
                let (result, gradient) = evaluate(batch, training: true, dropoutSeed: options.seed &+ UInt64(step) &* 0x9E37_79B9)
                states = result.finalStates
                optimizer.update(&parameters, gradient: gradient, clip: options.clip,
                                 rateFactor: options.schedule.factor(step: step, total: epochs * batches.count))
                step += 1
                fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - stepStart) / 1e9)
                loss += result.loss
                targets += result.targets
                correct += result.correct
                tokensSeen += batch.lengths.reduce(0, +)
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                let done = Double((epoch - 1) * batches.count + index + 1), total = Double(epochs * batches.count)
                report(.step(epoch: epoch, epochs: epochs, step: index + 1, steps: batches.count,
                             loss: result.loss / Double(max(result.targets, 1)), tokensPerSecond: Double(tokensSeen) / max(elapsed, 1e-9),
                             secondsLeft: elapsed / done * (total - done)))
                if shouldStop() { stopped = true; break }
            }
            lastTrainLoss = loss / Double(max(targets, 1))
            if stopped && epoch > 1 && written {
                return TrainingSummary(epochsCompleted: epochsCompleted, interrupted: true, validLoss: best.valid, validAccuracy: best.accuracy, trainLoss: best.train, fastestStepSeconds: fastest)
            }
            var validLoss: Double?, validAccuracy: Double?
            if let valid {
                let measured = measure(valid)
                (validLoss, validAccuracy) = (measured.loss, measured.accuracy)
            }
            let improves = validLoss.map { $0 < bestValidLoss } ?? true
            if improves || !written {
                try SafeTensorsWriter.write(try network.namedTensors(parameters), metadata: ["recur": architecture.json.serialized()], to: outputPath)
                written = true
                savedParameters = parameters
                bestValidLoss = validLoss ?? bestValidLoss
                best = (validLoss, validAccuracy, lastTrainLoss)
            }
            epochsCompleted = stopped ? epochsCompleted : epoch
            report(.epoch(epoch: epoch, trainLoss: lastTrainLoss, trainAccuracy: Double(correct) / Double(max(targets, 1)),
                          validLoss: validLoss, validAccuracy: validAccuracy, saved: improves))
            if stopped {
                return TrainingSummary(epochsCompleted: epochsCompleted, interrupted: true, validLoss: best.valid, validAccuracy: best.accuracy, trainLoss: best.train, fastestStepSeconds: fastest)
            }
            // Early stopping (automatic epochs only): validation has stopped improving.
            if options.epochs == nil, let validLoss {
                if validLoss < meaningfulBest - TrainingOptions.meaningfulImprovement {
                    (meaningfulBest, epochsWithoutImprovement) = (validLoss, 0)
                } else {
                    epochsWithoutImprovement += 1
                    if epochsWithoutImprovement >= TrainingOptions.patience(stepsPerEpoch: batches.count) { break }
                }
            }
        }
        return TrainingSummary(epochsCompleted: epochsCompleted, interrupted: false, validLoss: best.valid, validAccuracy: best.accuracy, trainLoss: best.train, fastestStepSeconds: fastest)
    }

    /// Mean cross-entropy (nats per target) and accuracy of the current parameters (after `run`: the
    /// written model's) on held-out data in the training data's form.
    public func score(dataPath: String) throws(RecurError) -> (loss: Double, accuracy: Double) {
        measure(try dataset(dataPath))
    }

    /// Data of `path` in the trained model's vocabulary and labels.
    private func dataset(_ path: String) throws(RecurError) -> Dataset {
        switch architecture.input {
        case .features(let size):
            return try DataReader.features(path, task: options.task, featureSize: size).0
        case .tokens:
            let corpus = try DataReader.corpus(path, task: options.task, tokenizer: architecture.tokenizer ?? Tokenizer.Configuration(kind: .char))
            return try DataReader.dataset(corpus, task: options.task, vocabulary: architecture.vocabulary ?? [], labels: architecture.labels ?? [], source: path)
        }
    }

    private func epochBatches(_ data: Dataset, random: inout SplitMix64, featureWidth: Int) -> [Batch] {
        switch data {
        case .stream(let ids): Batcher.streamChunks(ids, streams: options.batchSize, bptt: options.bptt)
        case .sequences(let examples):
            Batcher.epoch(examples, batchSize: options.batchSize, perStepTargets: options.task == .tag, featureWidth: featureWidth, random: &random)
        }
    }

    /// Mean cross-entropy (nats per target) and accuracy of the current parameters on `data`, inference mode.
    func measure(_ data: Dataset) -> (loss: Double, accuracy: Double) {
        let featureWidth = network.tokenInput ? 0 : network.inputWidth
        let batches: [Batch] = switch data {
        case .stream(let ids): Batcher.streamChunks(ids, streams: options.batchSize, bptt: options.bptt)
        case .sequences(let examples): Batcher.inOrder(examples, batchSize: options.batchSize, perStepTargets: options.task == .tag, featureWidth: featureWidth)
        }
        var loss = 0.0, targets = 0, correct = 0
        var states: [RecurrentState]? = nil
        for var batch in batches {
            if options.task == .lm { batch.initialStates = states }
            let (result, _) = evaluate(batch, training: false, dropoutSeed: 0, wantGradient: false)
            states = result.finalStates
            loss += result.loss
            targets += result.targets
            correct += result.correct
        }
        return (loss / Double(max(targets, 1)), Double(correct) / Double(max(targets, 1)))
    }

    /// Loss and gradient of the mean cross-entropy over `batch`, the rows split across two workers
    /// (a fixed split, so results do not depend on the machine's core count).
    func evaluate(_ batch: Batch, training: Bool, dropoutSeed: UInt64, wantGradient: Bool = true) -> (PassResult, [Float]) {
        Trainer.evaluate(network, parameters, batch, training: training, dropoutSeed: dropoutSeed, wantGradient: wantGradient)
    }

    static func evaluate(_ network: Network, _ parameters: [Float], _ batch: Batch, training: Bool, dropoutSeed: UInt64,
                         wantGradient: Bool = true) -> (PassResult, [Float]) {
        let n = network.parameterCount
        let transposed = network.transposedParameters(parameters)
        let workers = batch.batch >= 2 && batch.batch * batch.steps >= 64 ? 2 : 1
        let cut = (batch.batch + 1) / 2
        let ranges = workers == 1 ? [0..<batch.batch] : [0..<cut, cut..<batch.batch]
        let denominator = batch.targetCount
        let slices = workers == 1 ? [batch] : ranges.map { batch.rows($0) }
        // Each worker owns its caches and gradient; they meet only in this table.
        let finished = Mutex<[Int: (PassResult, [Float])]>([:])
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var gradient = [Float](repeating: 0, count: wantGradient ? n : 0)
            let result = parameters.withUnsafeBufferPointer { values in
                transposed.withUnsafeBufferPointer { transposedValues in
                    gradient.withUnsafeMutableBufferPointer { g in
                        Pass(network: network, weights: ParameterView(values: values.baseAddress!, transposed: transposedValues.baseAddress!),
                             batch: slices[worker], training: training, dropoutSeed: dropoutSeed &+ UInt64(worker))
                            .run(gradient: wantGradient ? g.baseAddress : nil, lossDenominator: denominator)
                    }
                }
            }
            finished.withLock { $0[worker] = (result, gradient) }
        }
        let parts = finished.withLock { table in (0..<workers).compactMap { table[$0] } }
        var (total, gradient) = parts[0]
        for (result, other) in parts.dropFirst() {
            total.loss += result.loss
            total.targets += result.targets
            total.correct += result.correct
            total.finalStates = zip(total.finalStates, result.finalStates).compactMap { RecurrentState.joined([$0, $1]) }
            for i in gradient.indices { gradient[i] += other[i] }
        }
        return (total, gradient)
    }
}

extension Network {
    /// Each product weight [out, in] transposed to [in, out] at its own offset; other values copied.
    func transposedParameters(_ parameters: [Float]) -> [Float] {
        var out = parameters
        parameters.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { t in
                for slot in slots where slot.transposedInProducts {
                    rt_transpose(slot.shape[0], slot.shape[1], p.baseAddress! + slot.offset, slot.shape[1], t.baseAddress! + slot.offset)
                }
            }
        }
        return out
    }
}

/// Adam or SGD with momentum, after clipping the gradient to a global norm.
final class Optimizer {
    private let options: TrainingOptions
    private var first: [Float]
    private var second: [Float]
    private var steps = 0

    init(options: TrainingOptions, count: Int) {
        self.options = options
        first = [Float](repeating: 0, count: count)
        second = options.optimizer == .adam ? [Float](repeating: 0, count: count) : []
    }

    /// One step at the learning rate times `rateFactor` (the schedule's).
    func update(_ parameters: inout [Float], gradient: [Float], clip: Float, rateFactor: Float = 1) {
        var gradient = gradient
        if clip > 0 {
            var squares = 0.0
            for g in gradient { squares += Double(g) * Double(g) }
            let norm = squares.squareRoot()
            if norm > Double(clip) {
                let scale = Float(Double(clip) / (norm + 1e-6))
                for i in gradient.indices { gradient[i] *= scale }
            }
        }
        steps += 1
        let n = parameters.count
        let lr = options.effectiveLearningRate * rateFactor
        parameters.withUnsafeMutableBufferPointer { w in
            gradient.withUnsafeBufferPointer { g in
                first.withUnsafeMutableBufferPointer { m in
                    switch options.optimizer {
                    case .adam:
                        second.withUnsafeMutableBufferPointer { v in
                            rt_adam(n, w.baseAddress!, g.baseAddress!, m.baseAddress!, v.baseAddress!, lr, 0.9, 0.999, 1e-8, steps)
                        }
                    case .sgd:
                        rt_sgd_momentum(n, w.baseAddress!, g.baseAddress!, m.baseAddress!, lr, 0.9)
                    }
                }
            }
        }
    }
}
