import CRecurKernels
import Foundation
import Recur

/// Floats owned by one worker thread for one pass: a fixed-size heap buffer that C kernels write.
final class Buffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(_ count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    func zero() { pointer.update(repeating: 0, count: count) }
}

/// A trainable parameter tensor: its place in the flat parameter vector and how PyTorch initialises it.
struct ParameterSlot: Sendable {
    enum Initializer: Sendable {
        /// uniform(−bound, bound): recurrent weights (1/√H), linear weights and biases (1/√in).
        case uniform(bound: Float)
        /// N(0, 1): nn.Embedding.
        case normal
    }

    /// Full name as in the model file ("encoder.weight_ih_l0").
    let name: String
    let shape: [Int]
    let offset: Int
    let initializer: Initializer
    /// A product's weight [out, in], which passes read transposed.
    let transposedInProducts: Bool

    var count: Int { shape.reduce(1, *) }
}

/// The differentiable form of an architecture: each layer's math over flat buffers, with the
/// parameters of every layer in one flat vector (so the optimiser and clipping see one array).
struct Network: Sendable {
    enum Cell: Sendable {
        case lstm, gru, rnn(relu: Bool)

        var gates: Int {
            switch self {
            case .lstm: 4
            case .gru: 3
            case .rnn: 1
            }
        }

        /// Floats per (sequence, step) the forward step keeps for the backward step.
        var kept: Int {
            switch self {
            case .lstm: 5
            case .gru: 4
            case .rnn: 1
            }
        }
    }

    /// Offsets of one direction of one stacked recurrent layer's parameters.
    struct Direction: Sendable {
        let inputWeight: Int, recurrentWeight: Int, inputBias: Int?, recurrentBias: Int?
    }

    struct Recurrent: Sendable {
        let name: String
        let cell: Cell
        let inputSize: Int, hidden: Int, layers: Int, directions: Int
        /// [layer][direction]
        let weights: [[Direction]]

        var hasCellState: Bool { if case .lstm = cell { true } else { false } }
        /// Rows of the state tensors: num_layers · D.
        var stateRows: Int { layers * directions }
        func inputWidth(_ k: Int) -> Int { k == 0 ? inputSize : directions * hidden }
    }

    enum Activation: Sendable { case relu, tanh, sigmoid }

    enum Operation: Sendable {
        case embedding(weight: Int, vocabulary: Int, dimension: Int)
        case recurrent(Recurrent)
        case linear(weight: Int, bias: Int?, inFeatures: Int, outFeatures: Int)
        case dropout(Float)
        case activation(Activation)
        case softmax(log: Bool)
        case pool(PoolMode)
    }

    enum PoolMode: String, Sendable { case last, mean, max, finalState = "final_state" }

    let operations: [Operation]
    let slots: [ParameterSlot]
    let parameterCount: Int
    /// Width of the logits the loss reads: the output before a final softmax/log_softmax.
    let outputWidth: Int
    /// True when the logits are per step ([B, T, C]), false when pooled ([B, C]).
    let perStepOutput: Bool
    let tokenInput: Bool
    let inputWidth: Int

    /// Builds the network of a checked architecture (a `Model` must already load from it, so shapes agree).
    init(_ architecture: Architecture) throws(RecurError) {
        var slots: [ParameterSlot] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int], _ initializer: ParameterSlot.Initializer, product: Bool = false) -> Int {
            slots.append(ParameterSlot(name: name, shape: shape, offset: offset, initializer: initializer, transposedInProducts: product))
            defer { offset += shape.reduce(1, *) }
            return offset
        }
        var operations: [Operation] = []
        var width: Int
        var perStep = true
        switch architecture.input {
        case .tokens(let v): (width, tokenInput, inputWidth) = (v, true, v)
        case .features(let s): (width, tokenInput, inputWidth) = (s, false, s)
        }
        var finalStateWidth = 0
        for (index, config) in architecture.layers.enumerated() {
            let name = config.name
            switch config.type {
            case "embedding":
                let v = try config.integer("num_embeddings"), d = try config.integer("embedding_dim")
                operations.append(.embedding(weight: add("\(name).weight", [v, d], .normal), vocabulary: v, dimension: d))
                width = d
            case "rnn", "lstm", "gru":
                let cell: Cell = switch config.type {
                case "lstm": .lstm
                case "gru": .gru
                default: .rnn(relu: try config.choice("nonlinearity", ["tanh", "relu"], default: "tanh") == "relu")
                }
                let input = try config.integer("input_size"), hidden = try config.integer("hidden_size")
                let layers = try config.integer("num_layers", default: 1)
                let directions = try config.boolean("bidirectional", default: false) ? 2 : 1
                let bias = try config.boolean("bias", default: true)
                let bound = 1 / Float(hidden).squareRoot()
                let g = cell.gates * hidden
                var weights: [[Direction]] = []
                for k in 0..<layers {
                    let inK = k == 0 ? input : directions * hidden
                    var row: [Direction] = []
                    for d in 0..<directions {
                        let s = d == 1 ? "_reverse" : ""
                        let wih = add("\(name).weight_ih_l\(k)\(s)", [g, inK], .uniform(bound: bound), product: true)
                        let whh = add("\(name).weight_hh_l\(k)\(s)", [g, hidden], .uniform(bound: bound), product: true)
                        let bih = bias ? add("\(name).bias_ih_l\(k)\(s)", [g], .uniform(bound: bound)) : nil
                        let bhh = bias ? add("\(name).bias_hh_l\(k)\(s)", [g], .uniform(bound: bound)) : nil
                        row.append(Direction(inputWeight: wih, recurrentWeight: whh, inputBias: bih, recurrentBias: bhh))
                    }
                    weights.append(row)
                }
                operations.append(.recurrent(Recurrent(name: name, cell: cell, inputSize: input, hidden: hidden,
                                                       layers: layers, directions: directions, weights: weights)))
                width = directions * hidden
                finalStateWidth = width
            case "linear":
                let i = try config.integer("in_features"), o = try config.integer("out_features")
                let bound = 1 / Float(i).squareRoot()
                let w = add("\(name).weight", [o, i], .uniform(bound: bound), product: true)
                let b = try config.boolean("bias", default: true) ? add("\(name).bias", [o], .uniform(bound: bound)) : nil
                operations.append(.linear(weight: w, bias: b, inFeatures: i, outFeatures: o))
                width = o
            case "dropout":
                let p = try config.number("p", default: 0.5)
                guard p >= 0, p < 1 else { throw RecurError(.format, "layer '\(name)' (dropout): p must be in [0, 1), found \(p)") }
                operations.append(.dropout(Float(p)))
            case "relu": operations.append(.activation(.relu))
            case "tanh": operations.append(.activation(.tanh))
            case "sigmoid": operations.append(.activation(.sigmoid))
            case "softmax", "log_softmax":
                // The last layer's softmax is folded into the loss (the logits are taken as such).
                if index < architecture.layers.count - 1 { operations.append(.softmax(log: config.type == "log_softmax")) }
            case "pool":
                let mode = PoolMode(rawValue: try config.choice("mode", ["last", "mean", "max", "final_state"])) ?? .last
                operations.append(.pool(mode))
                if mode == .finalState { width = finalStateWidth }
                perStep = false
            default:
                throw RecurError(.unsupported, "layer '\(name)': training does not support layer type '\(config.type)'")
            }
        }
        self.operations = operations
        self.slots = slots
        self.parameterCount = offset
        self.outputWidth = width
        self.perStepOutput = perStep
    }

    /// PyTorch's default initialisation, from a seeded generator. With `memoryHorizon` (the longest
    /// sequence the data holds), the gate biases then get the chrono initialisation (Tallec &
    /// Ollivier, "Can recurrent neural networks warp time?", ICLR 2018): per unit, the gate that
    /// keeps the state (lstm forget, gru update z) gets bias log(u), u ~ U(1, horizon − 1), and the
    /// lstm input gate −log(u), in `bias_ih` with the `bias_hh` entry 0 — so at the start each unit
    /// remembers over a time scale between 1 and the horizon steps instead of about 2, and
    /// gradients reach distant steps.
    func initialParameters(seed: UInt64, memoryHorizon: Int? = nil) -> [Float] {
        var random = SplitMix64(seed: seed)
        var values = [Float](repeating: 0, count: parameterCount)
        for slot in slots {
            for i in slot.offset..<(slot.offset + slot.count) {
                switch slot.initializer {
                case .uniform(let bound): values[i] = (Float(random.nextUnit()) * 2 - 1) * bound
                case .normal: values[i] = Float(random.nextNormal())
                }
            }
        }
        guard let memoryHorizon, memoryHorizon > 2 else { return values }
        for layer in recurrentLayers {
            // PyTorch's gate order: lstm i, f, g, o; gru r, z, n.
            let keep = 1
            let write: Int?
            switch layer.cell {
            case .lstm: write = 0
            case .gru: write = nil
            case .rnn: continue
            }
            let H = layer.hidden
            for direction in layer.weights.joined() {
                guard let inputBias = direction.inputBias, let recurrentBias = direction.recurrentBias else { continue }
                for unit in 0..<H {
                    let timeScale = Float(log(1 + random.nextUnit() * Double(memoryHorizon - 2)))
                    values[inputBias + keep * H + unit] = timeScale
                    values[recurrentBias + keep * H + unit] = 0
                    if let write {
                        values[inputBias + write * H + unit] = -timeScale
                        values[recurrentBias + write * H + unit] = 0
                    }
                }
            }
        }
        return values
    }

    /// The weights by full name, as the model file stores them.
    func namedTensors(_ parameters: [Float]) throws(RecurError) -> [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = []
        for slot in slots {
            out.append((slot.name, try Tensor.float32(Array(parameters[slot.offset..<(slot.offset + slot.count)]), shape: slot.shape)))
        }
        return out
    }

    /// Recurrent layers in order, with their state names, for carrying state across lm chunks.
    var recurrentLayers: [Recurrent] {
        operations.compactMap { if case .recurrent(let r) = $0 { r } else { nil } }
    }
}

/// Training's draws from the engine's deterministic generator (initialisation, shuffling, dropout).
extension SplitMix64 {
    /// Standard normal (Box–Muller).
    mutating func nextNormal() -> Double {
        let u = max(nextUnit(), 1e-300), v = nextUnit()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }

    /// Uniform in 0 ..< n.
    mutating func next(below n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
}
