import CRecurKernels
import Foundation
import Recur

/// One mini-batch (or one worker's rows of it) as the network reads it.
struct Batch: Sendable {
    let batch: Int
    let steps: Int
    /// Token ids [B, T] (token input) — empty for feature input.
    var tokens: [Int32]
    /// float32 [B, T, F] (feature input) — empty for token input.
    var features: [Float]
    /// [B], each in 1 … T.
    var lengths: [Int]
    /// [B] (pooled output) or [B, T] (per-step output); −1 marks steps without a target.
    var targets: [Int32]
    /// Initial states per recurrent layer (in layer order); nil = zeros.
    var initialStates: [RecurrentState]?

    /// Rows `range` of this batch.
    func rows(_ range: Range<Int>) -> Batch {
        func slice<T>(_ values: [T]) -> [T] {
            let width = values.count / max(batch, 1)
            return Array(values[(range.lowerBound * width)..<(range.upperBound * width)])
        }
        return Batch(batch: range.count, steps: steps, tokens: slice(tokens), features: slice(features),
                     lengths: Array(lengths[range]), targets: slice(targets),
                     initialStates: initialStates?.map { $0.selecting(range) })
    }

    /// Steps that carry a target (the loss's denominator).
    var targetCount: Int { targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }
}

/// A recurrent layer's state: h (and c for lstm), each [rows = num_layers·D, batch, hidden].
struct RecurrentState: Sendable, Equatable {
    let rows: Int, batch: Int, hidden: Int
    var h: [Float]
    var c: [Float]?

    static func zeros(_ layer: Network.Recurrent, batch: Int) -> RecurrentState {
        let count = layer.stateRows * batch * layer.hidden
        return RecurrentState(rows: layer.stateRows, batch: batch, hidden: layer.hidden,
                              h: [Float](repeating: 0, count: count),
                              c: layer.hasCellState ? [Float](repeating: 0, count: count) : nil)
    }

    /// Batch rows `range`.
    func selecting(_ range: Range<Int>) -> RecurrentState {
        func select(_ values: [Float]) -> [Float] {
            var out: [Float] = []
            out.reserveCapacity(rows * range.count * hidden)
            for r in 0..<rows {
                let base = r * batch * hidden
                out.append(contentsOf: values[(base + range.lowerBound * hidden)..<(base + range.upperBound * hidden)])
            }
            return out
        }
        return RecurrentState(rows: rows, batch: range.count, hidden: hidden, h: select(h), c: c.map(select))
    }

    /// Per-slice states joined back along the batch axis, in order.
    static func joined(_ parts: [RecurrentState]) -> RecurrentState? {
        guard let first = parts.first else { return nil }
        func join(_ arrays: [[Float]]) -> [Float] {
            var out: [Float] = []
            for r in 0..<first.rows {
                for (array, part) in zip(arrays, parts) {
                    let block = part.batch * first.hidden
                    out.append(contentsOf: array[(r * block)..<((r + 1) * block)])
                }
            }
            return out
        }
        return RecurrentState(rows: first.rows, batch: parts.reduce(0) { $0 + $1.batch }, hidden: first.hidden,
                              h: join(parts.map(\.h)), c: first.c == nil ? nil : join(parts.map { $0.c ?? [] }))
    }
}

/// What one pass over a batch measured.
struct PassResult: Sendable {
    /// Σ cross-entropy (nats) over steps with a target.
    var loss: Double = 0
    var targets: Int = 0
    var correct: Int = 0
    /// Each recurrent layer's state after the batch (for carrying across lm chunks).
    var finalStates: [RecurrentState] = []
}

/// The parameters a pass reads: the flat vector and, at the same offsets, the transposed copy of
/// every matrix used as a right-hand product operand (so forward products are unit-stride axpys).
struct ParameterView {
    let values: UnsafePointer<Float>
    let transposed: UnsafePointer<Float>
}

/// Forward (keeping intermediates) and backward over one batch. A new value per batch and worker:
/// it owns the caches, so it never crosses threads.
struct Pass {
    let network: Network
    let weights: ParameterView
    let batch: Batch
    /// Dropout active, intermediates kept.
    let training: Bool
    let dropoutSeed: UInt64

    private var B: Int { batch.batch }
    private var T: Int { batch.steps }

    private enum Cache {
        case none
        /// The layer's input [rows, width] (linear).
        case input(Buffer)
        /// The layer's output (activations, softmax).
        case output(Buffer)
        /// Dropout's scaled keep mask, same shape as the signal.
        case mask(Buffer)
        /// Max pool's arg-max step per (b, f) [B, F].
        case argmax([Int])
        case recurrent(RecurrentCache, stateIndex: Int)
        /// A final_state pool: the recurrent layer (by state index) whose final h it took.
        case finalState(owner: Int)
    }

    /// What a recurrent layer's backward needs, per stacked layer k and direction d.
    private final class RecurrentCache {
        /// Layer k's input [B, T, in_k].
        var inputs: [Buffer] = []
        /// State before each step [B, T, H]: h, and c for lstm.
        var hidden: [[Buffer]] = []
        var cell: [[Buffer?]] = []
        /// Kept activations [B, T, kept·H].
        var kept: [[Buffer]] = []
    }

    /// Runs the batch; with `gradient`, backpropagates the mean cross-entropy × (batch's target count
    /// / `lossDenominator`) into it (accumulating).
    func run(gradient: UnsafeMutablePointer<Float>?, lossDenominator: Int) -> PassResult {
        var result = PassResult()
        var caches: [Cache] = []
        var width = network.inputWidth
        var perStep = true
        var x = Buffer(0)
        if !network.tokenInput {
            x = Buffer(batch.features.count)
            batch.features.withUnsafeBufferPointer { x.pointer.update(from: $0.baseAddress!, count: $0.count) }
        }
        var stateIndex = 0
        var finalFeatures: Buffer?  // [B, D·H] of the latest recurrent layer's top stacked layer
        var finalFeaturesOwner = -1
        var shapes: [(width: Int, perStep: Bool)] = []  // each layer's input

        for (index, operation) in network.operations.enumerated() {
            shapes.append((width, perStep))
            var cache = Cache.none
            switch operation {
            case .embedding(let w, _, let dimension):
                // y[b, t, :] = W[id[b, t], :]
                let y = Buffer(B * T * dimension)
                for b in 0..<B {
                    for t in 0..<batch.lengths[b] {
                        let id = Int(batch.tokens[b * T + t])
                        (y.pointer + (b * T + t) * dimension).update(from: weights.values + w + id * dimension, count: dimension)
                    }
                }
                x = y
                width = dimension
            case .recurrent(let layer):
                let initial = batch.initialStates?[stateIndex]
                let (y, recurrentCache, final) = recurrentForward(layer, input: x, initial: initial)
                result.finalStates.append(final)
                finalFeatures = topFinalFeatures(layer, final)
                finalFeaturesOwner = stateIndex
                cache = .recurrent(recurrentCache, stateIndex: stateIndex)
                stateIndex += 1
                x = y
                width = layer.directions * layer.hidden
            case .linear(let w, let bias, let inFeatures, let outFeatures):
                // Y[rows, out] = X[rows, in] · Wᵀ + b
                let rows = perStep ? B * T : B
                let y = Buffer(rows * outFeatures)
                rt_gemm(rows, outFeatures, inFeatures, x.pointer, inFeatures, 1, weights.transposed + w, outFeatures, y.pointer, outFeatures, 0)
                if let bias { rt_add_bias_rows(rows, outFeatures, weights.values + bias, y.pointer, outFeatures) }
                cache = .input(x)
                x = y
                width = outFeatures
            case .dropout(let p):
                guard training, p > 0 else { break }
                // y = x ⊙ mask, mask = 1/(1−p) with probability 1−p, else 0
                var random = SplitMix64(seed: dropoutSeed &+ UInt64(index) &* 0x2545_F491_4F6C_DD1D)
                let mask = Buffer(x.count)
                let keep = 1 / (1 - p)
                let y = Buffer(x.count)
                for i in 0..<x.count {
                    mask.pointer[i] = random.nextUnit() < Double(p) ? 0 : keep
                    y.pointer[i] = x.pointer[i] * mask.pointer[i]
                }
                cache = .mask(mask)
                x = y
            case .activation(let kind):
                let y = Buffer(x.count)
                y.pointer.update(from: x.pointer, count: x.count)
                switch kind {
                case .relu: rk_relu(x.count, y.pointer)
                case .tanh: rk_tanh(x.count, y.pointer)
                case .sigmoid: rk_sigmoid(x.count, y.pointer)
                }
                cache = .output(y)
                x = y
            case .softmax(let log):
                let y = Buffer(x.count)
                y.pointer.update(from: x.pointer, count: x.count)
                if log { rk_log_softmax_rows(x.count / width, width, y.pointer) } else { rk_softmax_rows(x.count / width, width, y.pointer) }
                cache = .output(y)
                x = y
            case .pool(let mode):
                let (y, argmax, newWidth) = poolForward(mode, x, width: width, finalFeatures: finalFeatures)
                if mode == .max { cache = .argmax(argmax) }
                if mode == .finalState { cache = .finalState(owner: finalFeaturesOwner) }
                x = y
                width = newWidth
                perStep = false
            }
            if perStep { zeroPadding(x, width: width) }
            caches.append(cache)
        }

        // Loss: softmax cross-entropy on the logits.
        let rows = perStep ? B * T : B
        let dLogits = gradient == nil ? nil : Buffer(rows * width)
        var correct = 0
        result.loss = batch.targets.withUnsafeBufferPointer { targets in
            rt_cross_entropy(rows, width, x.pointer, targets.baseAddress, 1 / Float(max(lossDenominator, 1)), dLogits?.pointer, &correct)
        }
        result.correct = correct
        result.targets = batch.targetCount
        guard let gradient, let dLogits else { return result }

        // Backward, layer by layer in reverse.
        var dy = dLogits
        var finalStateGradients: [Int: Buffer] = [:]
        for (index, operation) in network.operations.enumerated().reversed() {
            let (inWidth, inPerStep) = shapes[index]
            let outPerStep: Bool = if case .pool = operation { false } else { inPerStep }
            if outPerStep { zeroPadding(dy, width: dy.count / (B * T)) }
            switch (operation, caches[index]) {
            case (.embedding(let w, _, let dimension), _):
                // differentiates y[b, t, :] = W[id[b, t], :]
                for b in 0..<B {
                    for t in 0..<batch.lengths[b] {
                        let id = Int(batch.tokens[b * T + t])
                        rt_add_bias_rows(1, dimension, dy.pointer + (b * T + t) * dimension, gradient + w + id * dimension, dimension)
                    }
                }
                dy = Buffer(0)
            case (.recurrent(let layer), .recurrent(let cache, let owner)):
                dy = recurrentBackward(layer, cache, dOutput: dy, dFinal: finalStateGradients[owner], gradient: gradient)
            case (.linear(let w, let bias, let inFeatures, let outFeatures), .input(let input)):
                // differentiates Y[rows, out] = X[rows, in] · Wᵀ + b
                let rows = inPerStep ? B * T : B
                rt_gemm(outFeatures, inFeatures, rows, dy.pointer, 1, outFeatures, input.pointer, inFeatures, gradient + w, inFeatures, 1)
                if let bias { rt_add_column_sums(rows, outFeatures, dy.pointer, outFeatures, gradient + bias) }
                let dx = Buffer(rows * inFeatures)
                rt_gemm(rows, inFeatures, outFeatures, dy.pointer, outFeatures, 1, weights.values + w, inFeatures, dx.pointer, inFeatures, 0)
                dy = dx
            case (.dropout, .mask(let mask)):
                // differentiates y = x ⊙ mask
                for i in 0..<dy.count { dy.pointer[i] *= mask.pointer[i] }
            case (.activation(let kind), .output(let y)):
                // differentiates y = relu(x) | tanh(x) | σ(x), from y
                for i in 0..<dy.count {
                    let v = y.pointer[i]
                    switch kind {
                    case .relu: dy.pointer[i] = v > 0 ? dy.pointer[i] : 0
                    case .tanh: dy.pointer[i] *= 1 - v * v
                    case .sigmoid: dy.pointer[i] *= v * (1 - v)
                    }
                }
            case (.softmax(let log), .output(let y)):
                // differentiates y = softmax(x) (dx = y ⊙ (dy − Σ dy ⊙ y)) or log_softmax(x) (dx = dy − softmax(x) Σ dy)
                let rows = dy.count / max(inWidth, 1)
                for r in 0..<rows {
                    let d = dy.pointer + r * inWidth, v = y.pointer + r * inWidth
                    var sum: Float = 0
                    for j in 0..<inWidth { sum += log ? d[j] : d[j] * v[j] }
                    for j in 0..<inWidth { d[j] = log ? d[j] - exp(v[j]) * sum : v[j] * (d[j] - sum) }
                }
            case (.pool(let mode), let cache):
                let dx = Buffer(B * T * inWidth)
                let outWidth = dy.count / max(B, 1)
                for b in 0..<B {
                    let length = batch.lengths[b]
                    let g = dy.pointer + b * outWidth
                    switch (mode, cache) {
                    case (.last, _):
                        // differentiates y[b] = x[b, len − 1]
                        (dx.pointer + (b * T + length - 1) * inWidth).update(from: g, count: inWidth)
                    case (.mean, _):
                        // differentiates y[b] = Σ_{t < len} x[b, t] / len
                        for t in 0..<length {
                            for f in 0..<inWidth { dx.pointer[(b * T + t) * inWidth + f] = g[f] / Float(length) }
                        }
                    case (.max, .argmax(let steps)):
                        // differentiates y[b, f] = max_{t < len} x[b, t, f]
                        for f in 0..<inWidth { dx.pointer[(b * T + steps[b * inWidth + f]) * inWidth + f] = g[f] }
                    default:
                        break
                    }
                }
                if case .finalState(let owner) = cache {
                    // y = h_n of the owner's top stacked layer: the gradient enters that layer's last state.
                    finalStateGradients[owner] = dy
                }
                dy = dx
            default:
                break
            }
        }
        return result
    }

    /// Zeroes the per-step vectors at padding steps (t ≥ length) of a [B, T, width] buffer.
    private func zeroPadding(_ values: Buffer, width: Int) {
        for b in 0..<B where batch.lengths[b] < T {
            (values.pointer + (b * T + batch.lengths[b]) * width).update(repeating: 0, count: (T - batch.lengths[b]) * width)
        }
    }

    /// The top stacked layer's final h, forward ‖ backward: [B, D·H].
    private func topFinalFeatures(_ layer: Network.Recurrent, _ state: RecurrentState) -> Buffer {
        let H = layer.hidden, D = layer.directions
        let out = Buffer(B * D * H)
        for d in 0..<D {
            let row = (layer.layers - 1) * D + d
            for b in 0..<B {
                state.h.withUnsafeBufferPointer { h in
                    (out.pointer + b * D * H + d * H).update(from: h.baseAddress! + (row * B + b) * H, count: H)
                }
            }
        }
        return out
    }

    private func poolForward(_ mode: Network.PoolMode, _ x: Buffer, width: Int, finalFeatures: Buffer?) -> (Buffer, [Int], Int) {
        if mode == .finalState, let finalFeatures { return (finalFeatures, [], finalFeatures.count / max(B, 1)) }
        let y = Buffer(B * width)
        var argmax = mode == .max ? [Int](repeating: 0, count: B * width) : []
        for b in 0..<B {
            let length = batch.lengths[b]
            let out = y.pointer + b * width
            for f in 0..<width {
                switch mode {
                case .last, .finalState:
                    out[f] = x.pointer[(b * T + length - 1) * width + f]
                case .mean:
                    var sum: Float = 0
                    for t in 0..<length { sum += x.pointer[(b * T + t) * width + f] }
                    out[f] = sum / Float(length)
                case .max:
                    var best = -Float.infinity, at = 0
                    for t in 0..<length where x.pointer[(b * T + t) * width + f] > best {
                        best = x.pointer[(b * T + t) * width + f]
                        at = t
                    }
                    out[f] = best
                    argmax[b * width + f] = at
                }
            }
        }
        return (y, argmax, width)
    }

    // MARK: Recurrent layers

    private func recurrentForward(_ layer: Network.Recurrent, input: Buffer, initial: RecurrentState?)
        -> (Buffer, RecurrentCache, RecurrentState)
    {
        let H = layer.hidden, D = layer.directions, G = layer.cell.gates * H, K = layer.cell.kept * H
        let cache = RecurrentCache()
        var final = initial ?? RecurrentState.zeros(layer, batch: B)
        var x = input
        var active = [UInt8](repeating: 0, count: B)
        for k in 0..<layer.layers {
            let inWidth = layer.inputWidth(k)
            let y = Buffer(B * T * D * H)
            cache.inputs.append(x)
            var hiddenRow: [Buffer] = [], cellRow: [Buffer?] = [], keptRow: [Buffer] = []
            for d in 0..<D {
                let weights = layer.weights[k][d]
                // gx [B, T, G] = x [B, T, in_k] · W_ihᵀ + b_ih
                let gx = Buffer(B * T * G)
                rt_gemm(B * T, G, inWidth, x.pointer, inWidth, 1, self.weights.transposed + weights.inputWeight, G, gx.pointer, G, 0)
                if let b = weights.inputBias { rt_add_bias_rows(B * T, G, self.weights.values + b, gx.pointer, G) }
                // h, c [B, H]: the running state, from the initial state's row k·D + d
                let row = k * D + d
                let h = Buffer(B * H)
                final.h.withUnsafeBufferPointer { h.pointer.update(from: $0.baseAddress! + row * B * H, count: B * H) }
                let c: Buffer? = layer.hasCellState ? Buffer(B * H) : nil
                if let c, let initialC = final.c {
                    initialC.withUnsafeBufferPointer { c.pointer.update(from: $0.baseAddress! + row * B * H, count: B * H) }
                }
                let hiddenBefore = Buffer(B * T * H)  // [B, T, H]
                let cellBefore: Buffer? = layer.hasCellState ? Buffer(B * T * H) : nil
                let kept = Buffer(B * T * K)  // [B, T, kept·H]
                let gh = Buffer(B * G)  // [B, G] = h · W_hhᵀ + b_hh
                for s in 0..<T {
                    let t = d == 0 ? s : T - 1 - s
                    for b in 0..<B {
                        active[b] = t < batch.lengths[b] ? 1 : 0
                        (hiddenBefore.pointer + (b * T + t) * H).update(from: h.pointer + b * H, count: H)
                        if let c, let cellBefore { (cellBefore.pointer + (b * T + t) * H).update(from: c.pointer + b * H, count: H) }
                    }
                    rt_gemm(B, G, H, h.pointer, H, 1, self.weights.transposed + weights.recurrentWeight, G, gh.pointer, G, 0)
                    if let b = weights.recurrentBias { rt_add_bias_rows(B, G, self.weights.values + b, gh.pointer, G) }
                    let gxt = gx.pointer + t * G, keptT = kept.pointer + t * K
                    switch layer.cell {
                    case .lstm: rt_lstm_forward_step(B, H, gxt, T * G, gh.pointer, c?.pointer, h.pointer, keptT, T * K, active)
                    case .gru: rt_gru_forward_step(B, H, gxt, T * G, gh.pointer, h.pointer, keptT, T * K, active)
                    case .rnn(let relu): rt_rnn_forward_step(B, H, gxt, T * G, gh.pointer, h.pointer, keptT, T * K, relu ? 1 : 0, active)
                    }
                    for b in 0..<B where active[b] != 0 {
                        (y.pointer + (b * T + t) * D * H + d * H).update(from: h.pointer + b * H, count: H)
                    }
                }
                final.h.withUnsafeMutableBufferPointer { (($0.baseAddress! + row * B * H)).update(from: h.pointer, count: B * H) }
                if let c { final.c?.withUnsafeMutableBufferPointer { ($0.baseAddress! + row * B * H).update(from: c.pointer, count: B * H) } }
                hiddenRow.append(hiddenBefore)
                cellRow.append(cellBefore)
                keptRow.append(kept)
            }
            cache.hidden.append(hiddenRow)
            cache.cell.append(cellRow)
            cache.kept.append(keptRow)
            x = y
        }
        return (x, cache, final)
    }

    /// Backpropagates through time. dOutput [B, T, D·H] (zero at padding); dFinal [B, D·H] is the
    /// gradient of the top stacked layer's final h (from a final_state pool). Returns dInput [B, T, in_0].
    private func recurrentBackward(_ layer: Network.Recurrent, _ cache: RecurrentCache, dOutput: Buffer, dFinal: Buffer?,
                                   gradient: UnsafeMutablePointer<Float>) -> Buffer {
        let H = layer.hidden, D = layer.directions, G = layer.cell.gates * H, K = layer.cell.kept * H
        var dy = dOutput
        var active = [UInt8](repeating: 0, count: B)
        for k in (0..<layer.layers).reversed() {
            let inWidth = layer.inputWidth(k)
            let x = cache.inputs[k]
            let dx = Buffer(B * T * inWidth)
            for d in 0..<D {
                let weights = layer.weights[k][d]
                let dh = Buffer(B * H)  // ∂L/∂h of the running state
                if k == layer.layers - 1, let dFinal {
                    for b in 0..<B { (dh.pointer + b * H).update(from: dFinal.pointer + b * D * H + d * H, count: H) }
                }
                let dc: Buffer? = layer.hasCellState ? Buffer(B * H) : nil
                let dgx = Buffer(B * T * G)  // ∂L/∂(W_ih x + b_ih) [B, T, G]
                let dghSeparate: Buffer? = if case .gru = layer.cell { Buffer(B * T * G) } else { nil }
                let dgh = dghSeparate ?? dgx  // ∂L/∂(W_hh h + b_hh) [B, T, G]; the same for lstm and rnn
                let hiddenBefore = cache.hidden[k][d], kept = cache.kept[k][d]
                for s in (0..<T).reversed() {
                    let t = d == 0 ? s : T - 1 - s
                    for b in 0..<B {
                        active[b] = t < batch.lengths[b] ? 1 : 0
                        if active[b] != 0 {
                            rt_add_bias_rows(1, H, dy.pointer + (b * T + t) * D * H + d * H, dh.pointer + b * H, H)
                        }
                    }
                    let keptT = kept.pointer + t * K
                    switch layer.cell {
                    case .lstm:
                        rt_lstm_backward_step(B, H, keptT, T * K, cache.cell[k][d]!.pointer + t * H, T * H, dh.pointer, dc!.pointer,
                                              dgx.pointer + t * G, T * G, active)
                    case .gru:
                        rt_gru_backward_step(B, H, keptT, T * K, hiddenBefore.pointer + t * H, T * H, dh.pointer,
                                             dgx.pointer + t * G, T * G, dgh.pointer + t * G, T * G, active)
                    case .rnn(let relu):
                        rt_rnn_backward_step(B, H, keptT, T * K, dh.pointer, dgx.pointer + t * G, T * G, relu ? 1 : 0, active)
                    }
                    // differentiates gh = h · W_hhᵀ + b_hh: ∂L/∂h += dgh · W_hh
                    rt_gemm(B, H, G, dgh.pointer + t * G, T * G, 1, self.weights.values + weights.recurrentWeight, H, dh.pointer, H, 1)
                }
                // ∂W_hh += dghᵀ · h_before, ∂b_hh += Σ dgh; ∂W_ih += dgxᵀ · x, ∂b_ih += Σ dgx; ∂x += dgx · W_ih
                rt_gemm(G, H, B * T, dgh.pointer, 1, G, hiddenBefore.pointer, H, gradient + weights.recurrentWeight, H, 1)
                if let b = weights.recurrentBias { rt_add_column_sums(B * T, G, dgh.pointer, G, gradient + b) }
                rt_gemm(G, inWidth, B * T, dgx.pointer, 1, G, x.pointer, inWidth, gradient + weights.inputWeight, inWidth, 1)
                if let b = weights.inputBias { rt_add_column_sums(B * T, G, dgx.pointer, G, gradient + b) }
                rt_gemm(B * T, inWidth, G, dgx.pointer, G, 1, self.weights.values + weights.inputWeight, inWidth, dx.pointer, inWidth, 1)
            }
            dy = dx
        }
        return dy
    }
}
