import CRecurKernels

/// What distinguishes rnn, lstm and gru: the gate count, the state tensors and one step's
/// element-wise math. Everything else (directions, lengths, initial states, stacking) is the
/// shared sequence driver's.
protocol RecurrentCell: Sendable {
    /// G: gate blocks of H rows in the weights.
    var gates: Int { get }
    /// "h", plus "c" for lstm.
    var stateNames: [String] { get }
    /// One step for B rows. `gx` [B, G·H] with row stride `ldgx` is W_ih x + b_ih; `gh` [B, G·H] is
    /// W_hh h + b_hh. `h` (and `c` for lstm) [B, H] are updated in place where `active` is non-zero.
    func step(batch: Int, hidden: Int, gx: UnsafePointer<Float>, ldgx: Int, gh: UnsafePointer<Float>,
              h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>?, active: UnsafePointer<UInt8>?)
}

struct LSTMCell: RecurrentCell {
    var gates: Int { 4 }
    var stateNames: [String] { ["h", "c"] }

    func step(batch: Int, hidden: Int, gx: UnsafePointer<Float>, ldgx: Int, gh: UnsafePointer<Float>,
              h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>?, active: UnsafePointer<UInt8>?) {
        rk_lstm_step(batch, hidden, gx, ldgx, gh, c, h, active)
    }
}

struct GRUCell: RecurrentCell {
    var gates: Int { 3 }
    var stateNames: [String] { ["h"] }

    func step(batch: Int, hidden: Int, gx: UnsafePointer<Float>, ldgx: Int, gh: UnsafePointer<Float>,
              h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>?, active: UnsafePointer<UInt8>?) {
        rk_gru_step(batch, hidden, gx, ldgx, gh, h, active)
    }
}

struct ElmanCell: RecurrentCell {
    let relu: Bool
    var gates: Int { 1 }
    var stateNames: [String] { ["h"] }

    func step(batch: Int, hidden: Int, gx: UnsafePointer<Float>, ldgx: Int, gh: UnsafePointer<Float>,
              h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>?, active: UnsafePointer<UInt8>?) {
        rk_rnn_step(batch, hidden, gx, ldgx, gh, h, relu ? 1 : 0, active)
    }
}

/// The weights of one direction of one stacked layer, in PyTorch's layout.
struct DirectionWeights: Sendable {
    /// [G·H, in_k]
    let input: [Float]
    /// [G·H, H]
    let recurrent: [Float]
    /// [G·H], absent when the layer has `bias: false`
    let inputBias: [Float]?
    /// [G·H]
    let recurrentBias: [Float]?
}

/// The `rnn`, `lstm` and `gru` layer types.
struct RecurrentKind: LayerKind {
    let typeName: String

    /// The most stacked layers (`num_layers`) one rnn, lstm or gru layer may have.
    static let maxStackedLayers = 1 << 16

    struct Shape {
        let inputSize: Int, hidden: Int, layers: Int, directions: Int, bias: Bool
        let cell: any RecurrentCell
    }

    func shape(_ config: LayerConfig) throws(RecurError) -> Shape {
        let cell: any RecurrentCell
        switch typeName {
        case "lstm": cell = LSTMCell()
        case "gru": cell = GRUCell()
        default: cell = ElmanCell(relu: try config.choice("nonlinearity", ["tanh", "relu"], default: "tanh") == "relu")
        }
        let layers = try config.integer("num_layers", default: 1)
        // Every stacked layer declares tensors of its own, so an absurd count would build an endless
        // list before any tensor is looked up.
        guard layers <= RecurrentKind.maxStackedLayers else {
            throw RecurError.format("layer '\(config.name)' (\(typeName)): num_layers must be at most \(RecurrentKind.maxStackedLayers), found \(layers)")
        }
        return Shape(
            inputSize: try config.integer("input_size"),
            hidden: try config.integer("hidden_size"),
            layers: layers,
            directions: try config.boolean("bidirectional", default: false) ? 2 : 1,
            bias: try config.boolean("bias", default: true),
            cell: cell)
    }

    private static func suffix(_ k: Int, _ d: Int) -> String { "l\(k)" + (d == 1 ? "_reverse" : "") }

    func parameters(_ config: LayerConfig) throws(RecurError) -> [ParameterDeclaration] {
        let s = try shape(config)
        let rows = s.cell.gates * s.hidden
        var declared: [ParameterDeclaration] = []
        for k in 0..<s.layers {
            for d in 0..<s.directions {
                let id = RecurrentKind.suffix(k, d)
                declared.append(ParameterDeclaration("weight_ih_\(id)", [rows, k == 0 ? s.inputSize : s.directions * s.hidden]))
                declared.append(ParameterDeclaration("weight_hh_\(id)", [rows, s.hidden]))
                if s.bias {
                    declared.append(ParameterDeclaration("bias_ih_\(id)", [rows]))
                    declared.append(ParameterDeclaration("bias_hh_\(id)", [rows]))
                }
            }
        }
        return declared
    }

    func makeLayer(_ config: LayerConfig, weights: [String: [Float]]) throws(RecurError) -> any Layer {
        let s = try shape(config)
        var stacked: [[DirectionWeights]] = []
        for k in 0..<s.layers {
            stacked.append((0..<s.directions).map { d in
                let id = RecurrentKind.suffix(k, d)
                return DirectionWeights(
                    input: weights["weight_ih_\(id)"] ?? [], recurrent: weights["weight_hh_\(id)"] ?? [],
                    inputBias: weights["bias_ih_\(id)"], recurrentBias: weights["bias_hh_\(id)"])
            })
        }
        return RecurrentLayer(name: config.name, cell: s.cell, inputSize: s.inputSize, hidden: s.hidden,
                              directions: s.directions, weights: stacked)
    }
}

/// A stacked, optionally bidirectional recurrent layer: [B, T, input_size] → [B, T, D·H].
struct RecurrentLayer: Layer {
    let name: String
    let cell: any RecurrentCell
    let inputSize: Int
    let hidden: Int
    let directions: Int
    /// [num_layers][directions]
    let weights: [[DirectionWeights]]

    var states: [StateDeclaration] {
        cell.stateNames.map { StateDeclaration(name: $0, rows: weights.count * directions, width: hidden) }
    }

    var canStream: Bool { directions == 1 }

    func outputShape(for input: SignalShape, context: inout ShapeContext) throws(RecurError) -> SignalShape {
        guard case .sequence(let features) = input, features == inputSize else {
            throw RecurError.format("layer '\(name)': input_size is \(inputSize), but its input is \(input)")
        }
        context.finalStateWidth = directions * hidden
        return .sequence(features: directions * hidden)
    }

    func forward(_ input: Signal, context: inout ForwardContext) throws(RecurError) -> Signal {
        guard case .sequence(var x, let batch, let steps, _) = input else {
            throw RecurError(.internal, "layer '\(name)' was given a signal that shape checking refuses")
        }
        let width = directions * hidden
        let rows = weights.count * directions
        let stateSize = batch * hidden
        let initial = cell.stateNames.map { context.initialStates["\(name).\($0)0"] }
        var finals = cell.stateNames.map { _ in [Float](repeating: 0, count: rows * stateSize) }
        var driver = SequenceDriver(batch: batch, steps: steps, hidden: hidden, gates: cell.gates, lengths: context.lengths)
        for (k, layerWeights) in weights.enumerated() {
            var y = [Float](repeating: 0, count: batch * steps * width)
            for (d, w) in layerWeights.enumerated() {
                let row = k * directions + d
                let stateRange = (row * stateSize)..<((row + 1) * stateSize)
                var h = initial[0].map { Array($0[stateRange]) } ?? [Float](repeating: 0, count: stateSize)
                var c = initial.count > 1 ? (initial[1].map { Array($0[stateRange]) } ?? [Float](repeating: 0, count: stateSize)) : []
                driver.run(cell: cell, weights: w, input: x, inputSize: k == 0 ? inputSize : width,
                           reverse: d == 1, h: &h, c: &c, output: &y, outputWidth: width, outputColumn: d * hidden)
                finals[0].replaceSubrange(stateRange, with: h)
                if finals.count > 1 { finals[1].replaceSubrange(stateRange, with: c) }
            }
            x = y
        }
        for (stateName, values) in zip(cell.stateNames, finals) {
            context.emitFinalState("\(name).\(stateName)_n", Tensor(floats: values, shape: [rows, batch, hidden]))
        }
        // The top stacked layer's final h, directions side by side: [B, D·H].
        var top = [Float](repeating: 0, count: batch * width)
        for d in 0..<directions {
            let row = (weights.count - 1) * directions + d
            for b in 0..<batch {
                let source = row * stateSize + b * hidden
                top.replaceSubrange((b * width + d * hidden)..<(b * width + (d + 1) * hidden),
                                    with: finals[0][source..<(source + hidden)])
            }
        }
        context.finalStateFeatures = top
        return .sequence(x, batch: batch, steps: steps, features: width)
    }
}

/// Runs one direction of one stacked recurrent layer over a batch, honouring per-sequence lengths:
/// a sequence's state is touched only at its valid steps, forward over t = 0 … len−1, backward over
/// t = len−1 … 0. Owns the workspace, so the time loop allocates nothing.
struct SequenceDriver {
    let batch: Int, steps: Int, hidden: Int, gates: Int
    let lengths: [Int]?
    /// [B, T, G·H]: the input projection of every step, computed as one matrix product.
    private var inputProjection: [Float]
    /// [B, G·H]: the recurrent projection of one step.
    private var recurrentProjection: [Float]
    /// [B]: 1 where the step is inside the sequence.
    private var active: [UInt8]

    init(batch: Int, steps: Int, hidden: Int, gates: Int, lengths: [Int]?) {
        self.batch = batch
        self.steps = steps
        self.hidden = hidden
        self.gates = gates
        self.lengths = lengths
        inputProjection = [Float](repeating: 0, count: batch * steps * gates * hidden)
        recurrentProjection = [Float](repeating: 0, count: batch * gates * hidden)
        active = [UInt8](repeating: 1, count: batch)
    }

    /// input [B, T, inputSize]; h, c [B, H] initial state in, final state out (c empty unless lstm);
    /// writes h at each valid step into output [B, T, outputWidth] at columns outputColumn ..< +H.
    mutating func run(cell: any RecurrentCell, weights: DirectionWeights, input: [Float], inputSize: Int,
                      reverse: Bool, h: inout [Float], c: inout [Float],
                      output: inout [Float], outputWidth: Int, outputColumn: Int) {
        let (B, T, H) = (batch, steps, hidden)
        let GH = gates * H
        input.withUnsafeBufferPointer { x in
            weights.input.withUnsafeBufferPointer { w in
                withOptionalPointer(weights.inputBias) { bias in
                    rk_linear(B * T, GH, inputSize, x.baseAddress, inputSize, w.baseAddress, bias, &inputProjection, GH)
                }
            }
        }
        let lengths = self.lengths
        weights.recurrent.withUnsafeBufferPointer { wHH in
            withOptionalPointer(weights.recurrentBias) { bHH in
                inputProjection.withUnsafeBufferPointer { gx in
                    recurrentProjection.withUnsafeMutableBufferPointer { gh in
                        active.withUnsafeMutableBufferPointer { active in
                            h.withUnsafeMutableBufferPointer { h in
                                c.withUnsafeMutableBufferPointer { c in
                                    output.withUnsafeMutableBufferPointer { y in
                                        SequenceDriver.visitSteps(steps: T, lengths: lengths, reverse: reverse, active: active) { t, active in
                                            rk_linear(B, GH, H, h.baseAddress, H, wHH.baseAddress, bHH, gh.baseAddress, GH)
                                            cell.step(batch: B, hidden: H, gx: gx.baseAddress! + t * GH, ldgx: T * GH,
                                                      gh: gh.baseAddress!, h: h.baseAddress!, c: c.baseAddress, active: active)
                                            for b in 0..<B where (active?[b] ?? 1) != 0 {
                                                let destination = y.baseAddress! + (b * T + t) * outputWidth + outputColumn
                                                destination.update(from: h.baseAddress! + b * H, count: H)
                                            }
                                            return true
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension SequenceDriver {
    /// The time loop every recurrent layer runs through (built-in cells and plugin steps): visits the
    /// steps of one direction in order, forward t = 0 … len−1 or backward t = len−1 … 0 of each
    /// sequence, filling `active` [B] with 1 where step t is inside the sequence. `body` gets t and
    /// `active`, or nil when every sequence is inside; it returns false to stop early.
    static func visitSteps(steps: Int, lengths: [Int]?, reverse: Bool, active: UnsafeMutableBufferPointer<UInt8>,
                           _ body: (_ t: Int, _ active: UnsafePointer<UInt8>?) -> Bool) {
        let maxLength = lengths?.max() ?? steps
        for s in 0..<maxLength {
            let t = reverse ? maxLength - 1 - s : s
            var allActive = true
            if let lengths {
                for (b, length) in lengths.enumerated() {
                    let valid = t < length
                    active[b] = valid ? 1 : 0
                    allActive = allActive && valid
                }
            }
            guard body(t, allActive ? nil : UnsafePointer(active.baseAddress)) else { return }
        }
    }
}

/// Calls `body` with the array's base address, or with nil when there is no array.
func withOptionalPointer<Element, R>(_ array: [Element]?, _ body: (UnsafePointer<Element>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}
