import CRecurKernels

/// What distinguishes rnn, lstm and gru: the gate count, the state tensors, the step kernel and
/// where the recurrent bias goes. Everything else (directions, lengths, initial states, stacking,
/// threads) is the shared sequence driver's.
protocol RecurrentCell: Sendable {
    /// G: gate blocks of H rows in the weights.
    var gates: Int { get }
    /// "h", plus "c" for lstm.
    var stateNames: [String] { get }
    /// The fused step kernel (rk_recurrent_step) for this cell.
    var kernel: rk_cell { get }
    /// Splits the biases [G·H] into the part added to the input projection [G·H] and the part the
    /// step adds inside the gate math (gru's b_hn [H]); nil where there is nothing to add.
    func foldBiases(input: [Float]?, recurrent: [Float]?, hidden: Int) -> (projection: [Float]?, step: [Float]?)
}

extension RecurrentCell {
    /// b_ih + b_hh: every gate's recurrent bias simply adds to its pre-activation.
    func foldBiases(input: [Float]?, recurrent: [Float]?, hidden: Int) -> (projection: [Float]?, step: [Float]?) {
        guard let input, let recurrent else { return (input ?? recurrent, nil) }
        return (zip(input, recurrent).map { $0 + $1 }, nil)
    }
}

struct LSTMCell: RecurrentCell {
    var gates: Int { 4 }
    var stateNames: [String] { ["h", "c"] }
    var kernel: rk_cell { RK_CELL_LSTM }
}

struct GRUCell: RecurrentCell {
    var gates: Int { 3 }
    var stateNames: [String] { ["h"] }
    var kernel: rk_cell { RK_CELL_GRU }

    /// r and z fold like lstm's gates; b_hn stays in the step: n = tanh(gx_n + r ⊙ (W_hn h + b_hn)).
    func foldBiases(input: [Float]?, recurrent: [Float]?, hidden: Int) -> (projection: [Float]?, step: [Float]?) {
        guard let recurrent else { return (input, nil) }
        var projection = input ?? [Float](repeating: 0, count: 3 * hidden)
        for i in 0..<(2 * hidden) { projection[i] += recurrent[i] }
        return (projection, Array(recurrent[(2 * hidden)...]))
    }
}

struct ElmanCell: RecurrentCell {
    let relu: Bool
    var gates: Int { 1 }
    var stateNames: [String] { ["h"] }
    var kernel: rk_cell { relu ? RK_CELL_RNN_RELU : RK_CELL_RNN_TANH }
}

/// How a recurrent layer holds its weights and computes its products: float32 (the default), W_hh in
/// half precision (`recurrent_weights`: "float16"), or every product in bfloat16 (`precision`:
/// "bfloat16": W_ih, W_hh and the x and h they multiply rounded to bfloat16, sums in float32).
enum RecurrentPrecision: Sendable {
    case float32, halfRecurrent, bfloat16

    /// How the kernels hold W_hh.
    var kernelWeights: rk_weights {
        switch self {
        case .float32: RK_WEIGHTS_FLOAT32
        case .halfRecurrent: RK_WEIGHTS_FLOAT16
        case .bfloat16: RK_WEIGHTS_BFLOAT16
        }
    }
}

/// The weights of one direction of one stacked layer, packed once at load for the kernels; the
/// packed arrays replace PyTorch's [G·H, in] and [G·H, H] matrices.
struct DirectionWeights: Sendable {
    /// rk_input_pack of W_ih [G·H, in_k]; nil when `bf16Input` holds it
    let input: PackedValues<Float>?
    /// rk_gates_pack_bf16 of W_ih [G·H, in_k] in bfloat16 precision, or nil
    let bf16Input: PackedValues<UInt16>?
    /// rk_input_bias_pack of the biases the input projection adds (RecurrentCell.foldBiases); nil without bias
    let projectionBias: PackedValues<Float>?
    /// rk_recurrent_pack of W_hh [G·H, H]; nil when `halfRecurrent` or `bf16Recurrent` holds it
    let recurrent: PackedValues<Float>?
    /// rk_recurrent_pack_half of W_hh [G·H, H] (the layer's `recurrent_weights` is "float16"), or nil
    let halfRecurrent: PackedValues<UInt16>?
    /// rk_gates_pack_bf16 of W_hh [G·H, H] in bfloat16 precision, or nil
    let bf16Recurrent: PackedValues<UInt16>?
    /// gru's b_hn [H]; nil otherwise
    let stepBias: PackedValues<Float>?

    /// Takes the direction's tensors (suffix `id`, e.g. "l0_reverse") one at a time, the weight
    /// matrices a block of rows at a time, each block packed as it is read (so loading holds a
    /// matrix packed and one block, never all of it twice). W_hh in half precision must be finite and
    /// within ±65504, the largest half.
    init(cell: any RecurrentCell, hidden: Int, inputSize: Int, weights: LayerWeights, id: String,
         precision: RecurrentPrecision, layerName: String) throws(RecurError) {
        let gates = cell.gates
        func pack<Element>(_ suffix: String, columns: Int, count: Int, format: rk_weights,
                           check: ([Float]) throws(RecurError) -> Void = { _ in }) throws(RecurError) -> PackedValues<Element> {
            try weights.packed(suffix, rows: gates * hidden, rowLength: columns, count: count, layer: layerName) {
                (firstRow, rowCount, values, packed: UnsafeMutablePointer<Element>) throws(RecurError) in
                try check(values)
                rk_gates_pack_rows(gates, hidden, columns, firstRow, rowCount, values, packed, format)
            }
        }
        let (inputName, recurrentName) = ("weight_ih_\(id)", "weight_hh_\(id)")
        switch precision {
        case .bfloat16:
            (input, recurrent, halfRecurrent) = (nil, nil, nil)
            bf16Input = try pack(inputName, columns: inputSize, count: rk_gates_packed_size_bf16(gates, hidden, inputSize),
                                 format: RK_WEIGHTS_BFLOAT16)
            bf16Recurrent = try pack(recurrentName, columns: hidden, count: rk_gates_packed_size_bf16(gates, hidden, hidden),
                                     format: RK_WEIGHTS_BFLOAT16)
        case .float32, .halfRecurrent:
            (bf16Input, bf16Recurrent) = (nil, nil)
            input = try pack(inputName, columns: inputSize, count: rk_input_packed_size(gates, hidden, inputSize),
                             format: RK_WEIGHTS_FLOAT32)
            let recurrentCount = rk_recurrent_packed_size(gates, hidden)
            if precision == .halfRecurrent {
                recurrent = nil
                halfRecurrent = try pack(recurrentName, columns: hidden, count: recurrentCount, format: RK_WEIGHTS_FLOAT16) { rows throws(RecurError) in
                    if let bad = rows.first(where: { !(abs($0) <= 65504) }) {
                        throw RecurError.format("\(layerName).\(recurrentName): \(bad) does not fit in half precision (recurrent_weights \"float16\" holds finite values within ±65504)")
                    }
                }
            } else {
                (recurrent, halfRecurrent) = (try pack(recurrentName, columns: hidden, count: recurrentCount, format: RK_WEIGHTS_FLOAT32), nil)
            }
        }
        let (projectionBias, stepBias) = cell.foldBiases(input: try weights.take("bias_ih_\(id)"),
                                                         recurrent: try weights.take("bias_hh_\(id)"), hidden: hidden)
        self.projectionBias = projectionBias.map { bias in
            PackedValues(count: rk_gate_columns(gates, hidden)) { rk_input_bias_pack(gates, hidden, bias, $0) }
        }
        self.stepBias = stepBias.map { PackedValues($0) }
    }
}

/// The `rnn`, `lstm` and `gru` layer types.
struct RecurrentKind: LayerKind {
    let typeName: String

    /// The most stacked layers (`num_layers`) one rnn, lstm or gru layer may have.
    static let maxStackedLayers = 1 << 16

    struct Shape {
        let inputSize: Int, hidden: Int, layers: Int, directions: Int, bias: Bool
        let cell: any RecurrentCell
        let precision: RecurrentPrecision
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
            cell: cell,
            precision: try Self.precision(config))
    }

    /// The layer's `recurrent_weights` ("float32" or "float16") and `precision` ("float32" or
    /// "bfloat16"); bfloat16 products hold W_hh in bfloat16, so the two are not combined.
    private static func precision(_ config: LayerConfig) throws(RecurError) -> RecurrentPrecision {
        let half = try config.choice("recurrent_weights", ["float32", "float16"], default: "float32") == "float16"
        let bfloat16 = try config.choice("precision", ["float32", "bfloat16"], default: "float32") == "bfloat16"
        if half && bfloat16 {
            throw RecurError.format("layer '\(config.name)': precision \"bfloat16\" holds W_hh in bfloat16, so recurrent_weights \"float16\" cannot be combined with it")
        }
        return bfloat16 ? .bfloat16 : half ? .halfRecurrent : .float32
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
        try makeLayer(config, loading: LayerWeights(weights))
    }

    func makeLayer(_ config: LayerConfig, loading weights: LayerWeights) throws(RecurError) -> any Layer {
        let s = try shape(config)
        var stacked: [[DirectionWeights]] = []
        for k in 0..<s.layers {
            var directions: [DirectionWeights] = []
            for d in 0..<s.directions {
                directions.append(try DirectionWeights(
                    cell: s.cell, hidden: s.hidden, inputSize: k == 0 ? s.inputSize : s.directions * s.hidden,
                    weights: weights, id: RecurrentKind.suffix(k, d), precision: s.precision, layerName: config.name))
            }
            stacked.append(directions)
        }
        return RecurrentLayer(name: config.name, cell: s.cell, inputSize: s.inputSize, hidden: s.hidden,
                              directions: s.directions, precision: s.precision, weights: stacked)
    }
}

/// A stacked, optionally bidirectional recurrent layer: [B, T, input_size] → [B, T, D·H].
struct RecurrentLayer: Layer {
    let name: String
    let cell: any RecurrentCell
    let inputSize: Int
    let hidden: Int
    let directions: Int
    let precision: RecurrentPrecision
    /// [num_layers][directions]
    let weights: [[DirectionWeights]]
    /// Per state of the cell, the names its initial and final values go by ("L.h0", "L.h_n"),
    /// built once rather than on every forward pass.
    private let stateTensors: [(initial: String, final: String)]

    init(name: String, cell: any RecurrentCell, inputSize: Int, hidden: Int, directions: Int, precision: RecurrentPrecision,
         weights: [[DirectionWeights]]) {
        self.name = name
        self.cell = cell
        self.inputSize = inputSize
        self.hidden = hidden
        self.directions = directions
        self.precision = precision
        self.weights = weights
        stateTensors = cell.stateNames.map { stateTensorNames(layer: name, state: $0) }
    }

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
        guard case .sequence(let x, let batch, let steps, _) = input else {
            throw RecurError(.internal, "layer '\(name)' was given a signal that shape checking refuses")
        }
        return try x.withUnsafeBufferPointer { x throws(RecurError) in try forward(x, batch: batch, steps: steps, context: &context) }
    }

    /// `forward` over x [B, T, input_size] in memory of the caller's, read in place.
    func forward(_ x: UnsafeBufferPointer<Float>, batch: Int, steps: Int, context: inout ForwardContext) throws(RecurError) -> Signal {
        var y = ReusedFloats.take(batch * steps * directions * hidden)
        try y.withUnsafeMutableBufferPointer { y throws(RecurError) in
            try forward(x, batch: batch, steps: steps, context: &context, into: y)
        }
        return .sequence(y, batch: batch, steps: steps, features: directions * hidden)
    }

    /// `forward` from x [B, T, input_size] into output [B, T, D·H], both in memory of the caller's: a
    /// caller that has the model's input, or room for its output, saves copying it.
    func forward(_ x: UnsafeBufferPointer<Float>, batch: Int, steps: Int, context: inout ForwardContext,
                 into output: UnsafeMutableBufferPointer<Float>) throws(RecurError) {
        guard x.count == batch * steps * inputSize, output.count == batch * steps * directions * hidden else {
            throw RecurError(.internal, "layer '\(name)': \(x.count) input and \(output.count) output floats for B = \(batch), T = \(steps)")
        }
        run(x, batch: batch, steps: steps, context: &context, output: output)
    }

    /// The stacked layers over x [B, T, inputSize], the top one's h at each step into output [B, T, D·H]
    /// (zero past a sequence's length), and the final states into `context`.
    private func run(_ input: UnsafeBufferPointer<Float>, batch: Int, steps: Int, context: inout ForwardContext,
                     output: UnsafeMutableBufferPointer<Float>) {
        let width = directions * hidden
        let rows = weights.count * directions
        let stateSize = batch * hidden
        let initial = stateTensors.map { context.initialStates[$0.initial] }
        // [rows, B, H] each: the initial states in, the final states out, row by row as layers run.
        var states = initial.map { $0 ?? [Float](repeating: 0, count: rows * stateSize) }
        var driver = SequenceDriver(cell: cell, batch: batch, steps: steps, hidden: hidden, directions: directions,
                                    precision: precision, inputSize: max(inputSize, width), lengths: context.lengths)
        var lower: [Float] = [] // the stacked layer below's output, this one's input
        for (k, layerWeights) in weights.enumerated() {
            // The top layer writes the output; a lower one, the next one's input.
            let writesOutput = k == weights.count - 1
            var below = writesOutput ? [] : ReusedFloats.take(batch * steps * width)
            let range = (k * directions * stateSize)..<((k + 1) * directions * stateSize)
            var h = Array(states[0][range])
            var c = states.count > 1 ? Array(states[1][range]) : []
            lower.withUnsafeBufferPointer { lower in
                below.withUnsafeMutableBufferPointer { below in
                    let y = writesOutput ? output : below
                    // Without lengths every step of every row is written; with them, steps past a row's
                    // length stay zero.
                    if context.lengths != nil { y.update(repeating: 0) }
                    driver.run(weights: layerWeights, input: k == 0 ? input : lower, inputSize: k == 0 ? inputSize : width,
                               h: &h, c: &c, output: y)
                }
            }
            states[0].replaceSubrange(range, with: h)
            if states.count > 1 { states[1].replaceSubrange(range, with: c) }
            if k > 0 { ReusedFloats.give(lower) }
            lower = below
        }
        driver.releaseWorkspace()
        for (names, values) in zip(stateTensors, states) {
            context.emitFinalState(names.final, Tensor(floats: values, shape: [rows, batch, hidden]))
        }
        // The top stacked layer's final h, directions side by side: [B, D·H].
        var top = [Float](repeating: 0, count: batch * width)
        for d in 0..<directions {
            let row = (weights.count - 1) * directions + d
            for b in 0..<batch {
                let source = row * stateSize + b * hidden
                top.replaceSubrange((b * width + d * hidden)..<(b * width + (d + 1) * hidden),
                                    with: states[0][source..<(source + hidden)])
            }
        }
        context.finalStateFeatures = top
    }
}

/// Runs one stacked recurrent layer (all its directions at once) over a batch, honouring
/// per-sequence lengths: a sequence's state is touched only at its valid steps, forward over
/// t = 0 … len−1, backward over t = len−1 … 0. The time loop is rk_run_sequences': the input
/// projection of every step as one matrix product (unless the steps compute their own), then one
/// fused product-and-gates step per time step, split over the worker threads. Owns the workspace,
/// reused across stacked layers, so nothing is allocated per step.
struct SequenceDriver {
    let cell: any RecurrentCell
    let batch: Int, steps: Int, hidden: Int, directions: Int
    let precision: RecurrentPrecision
    let lengths: [Int]?
    /// Per direction: [T, B, rk_gate_columns(G, H)] input projections (time-major; left untouched
    /// when the steps project their own input), [B, H] spare state, the step's partial sums for
    /// each thread [RK_MAX_THREADS, rk_step_partial_size(G, B, H, ·)], then in bfloat16 the input
    /// rounded, [B·T, rk_bf16_row_size(inputSize)] bfloat16 values, or with half-precision W_hh that
    /// the run widens (rk_step_widens_half_weights) W_hh in float32, [rk_recurrent_packed_size(G, H)].
    /// Every part starts on a 64-byte line, from the first line in the array: the projection's stores
    /// and the steps' loads of 16 floats then take one line each, not two, as with the weights
    /// (PackedValues). Against parts 48 bytes past a line (a switch read at each call, blocks
    /// alternating): LSTM-256 at batch 1 0.99, over 1000 steps 0.97, LSTM-100 B = 5 0.98, LSTM-64 B = 8
    /// 0.97, LSTM-300 B = 3 0.99.
    private var workspace: [Float]
    /// Floats of one direction's workspace and, within it, where its parts start: multiples of a line's.
    private let stride: Int, spareOffset: Int, partialOffset: Int, roundedInputOffset: Int
    /// Where the widened W_hh starts, or nil when the run does not widen.
    private let widenedOffset: Int?
    private static let lineFloats = cacheLineBytes / MemoryLayout<Float>.stride

    /// `floats` rounded up to whole lines.
    private static func lines(_ floats: Int) -> Int { (floats + lineFloats - 1) / lineFloats * lineFloats }

    /// inputSize: the widest input of the layers it runs.
    init(cell: any RecurrentCell, batch: Int, steps: Int, hidden: Int, directions: Int, precision: RecurrentPrecision,
         inputSize: Int, lengths: [Int]?) {
        self.cell = cell
        self.batch = batch
        self.steps = steps
        self.hidden = hidden
        self.directions = directions
        self.precision = precision
        self.lengths = lengths
        spareOffset = Self.lines(batch * steps * rk_gate_columns(cell.gates, hidden))
        partialOffset = Self.lines(spareOffset + batch * hidden)
        // rk_step_partial_size is whole lines, so each thread's partial sums start on one.
        roundedInputOffset = partialOffset
            + Int(RK_MAX_THREADS) * rk_step_partial_size(cell.gates, batch, hidden, precision.kernelWeights)
        let widens = precision == .halfRecurrent && rk_step_widens_half_weights(cell.gates, batch, hidden) != 0
        let roundedInput = precision == .bfloat16 ? (batch * steps * rk_bf16_row_size(inputSize) + 1) / 2 : 0
        let widened = widens ? rk_recurrent_packed_size(cell.gates, hidden) : 0
        widenedOffset = widens ? Self.lines(roundedInputOffset + roundedInput) : nil
        stride = Self.lines((widenedOffset ?? roundedInputOffset + roundedInput) + widened)
        // Every part is written before it is read (rk_sequence), so nothing is zeroed. A line more, for
        // the first line to start within the array.
        workspace = ReusedFloats.take(directions * stride + Self.lineFloats)
    }

    /// Gives the workspace to ReusedFloats for a later pass; the driver runs nothing after this.
    func releaseWorkspace() { ReusedFloats.give(workspace) }

    /// input [B, T, inputSize]; h, c [D, B, H] initial state in, final state out (c empty unless
    /// lstm); writes direction d's h at each valid step into output [B, T, D·H] at columns d·H ..< (d+1)·H.
    mutating func run(weights: [DirectionWeights], input x: UnsafeBufferPointer<Float>, inputSize: Int,
                      h: inout [Float], c: inout [Float], output y: UnsafeMutableBufferPointer<Float>) {
        let (B, T, H, D) = (batch, steps, hidden, directions)
        let (stride, spareOffset, partialOffset) = (stride, spareOffset, partialOffset)
        let (roundedInputOffset, widenedOffset) = (roundedInputOffset, widenedOffset)
        let (kernel, lengths) = (cell.kernel, self.lengths)
        let constants = weights.flatMap { [$0.input, $0.projectionBias, $0.recurrent, $0.stepBias] }
        let sixteenBitConstants = weights.flatMap { [$0.halfRecurrent, $0.bf16Input, $0.bf16Recurrent] }
        withOptionalPointers(constants) { constant in
            withOptionalPointers(sixteenBitConstants) { sixteenBit in
                workspace.withUnsafeMutableBufferPointer { work in
                    h.withUnsafeMutableBufferPointer { h in
                        c.withUnsafeMutableBufferPointer { c in
                            withOptionalLengths(lengths) { lengths in
                                let first = work.baseAddress! + elementsToCacheLine(work.baseAddress!)
                                let sequences = (0..<D).map { d in
                                    let direction = first + d * stride
                                    // Written and read by the kernels alone, as bfloat16 values.
                                    let roundedInput = UnsafeMutableRawPointer(direction + roundedInputOffset)
                                        .assumingMemoryBound(to: UInt16.self)
                                    return rk_sequence(
                                        cell: kernel, batch: B, steps: T, input_size: inputSize, hidden: H,
                                        x: x.baseAddress, ldx: inputSize,
                                        input_weights: constant[4 * d], input_bias: constant[4 * d + 1],
                                        recurrent_weights: constant[4 * d + 2], recurrent_half_weights: sixteenBit[3 * d],
                                        recurrent_bias: constant[4 * d + 3],
                                        lengths: lengths, reverse: d == 1 ? 1 : 0,
                                        gx: direction, h: h.baseAddress! + d * B * H, h_spare: direction + spareOffset,
                                        partial: direction + partialOffset,
                                        c: c.isEmpty ? nil : c.baseAddress! + d * B * H,
                                        y: y.baseAddress! + d * H, ldy: D * H,
                                        input_bf16_weights: sixteenBit[3 * d + 1], recurrent_bf16_weights: sixteenBit[3 * d + 2],
                                        x_bf16: sixteenBit[3 * d + 1] == nil ? nil : roundedInput,
                                        recurrent_widened: widenedOffset.map { direction + $0 })
                                }
                                rk_run_sequences(sequences, sequences.count)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Calls `body` with the array's base address, or with nil when there is no array.
func withOptionalPointer<Element, R>(_ array: [Element]?, _ body: (UnsafePointer<Element>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// Calls `body` with the address of each one's first value in order (nil for an absent one). One array
/// of pointers filled level by level: a new array at each level cost every pass 2,400 instructions more.
func withOptionalPointers<Element, R>(_ packed: [PackedValues<Element>?], _ body: ([UnsafePointer<Element>?]) -> R) -> R {
    var pointers = [UnsafePointer<Element>?](repeating: nil, count: packed.count)
    func collect(from index: Int) -> R {
        guard index < packed.count else { return body(pointers) }
        guard let values = packed[index] else { return collect(from: index + 1) }
        return values.withPointer { pointer in
            pointers[index] = pointer
            return collect(from: index + 1)
        }
    }
    return collect(from: 0)
}

/// Calls `body` with the lengths' base address (C's size_t is Swift's Int), or nil.
private func withOptionalLengths<R>(_ lengths: [Int]?, _ body: (UnsafePointer<Int>?) -> R) -> R {
    guard let lengths else { return body(nil) }
    return lengths.withUnsafeBufferPointer { body($0.baseAddress) }
}
