import Foundation
import Recur

/// An independent float64 reference of the recurrent semantics, written per sequence and per step
/// straight from model-format.md (no batching, no kernels), to check the engine on shapes the
/// golden cases do not cover.
struct ReferenceRecurrent {
    enum Cell: String { case rnn, lstm, gru }

    let cell: Cell
    let inputSize: Int, hidden: Int, layers: Int, directions: Int
    let bias: Bool, relu: Bool
    /// Full names without the layer prefix ("weight_ih_l0") → row-major values.
    var weights: [String: [Float]]
    /// The engine's layer keeps W_hh in half precision (`recurrent_weights`: "float16").
    var halfRecurrent = false
    /// The engine's layer computes its products in bfloat16 (`precision`: "bfloat16").
    var bfloat16 = false
    /// Applied to every x and h the reference multiplies by a weight matrix (nil: used as they are).
    var productInputRounding: ((Double) -> Double)?

    var gates: Int { cell == .lstm ? 4 : cell == .gru ? 3 : 1 }

    /// The architecture layer object for the engine.
    func layerJSON(name: String) -> JSONValue {
        var fields: [String: JSONValue] = [
            "name": .string(name), "type": .string(cell.rawValue), "input_size": .int(inputSize),
            "hidden_size": .int(hidden), "num_layers": .int(layers), "bidirectional": .bool(directions == 2),
            "bias": .bool(bias),
        ]
        if cell == .rnn { fields["nonlinearity"] = .string(relu ? "relu" : "tanh") }
        if halfRecurrent { fields["recurrent_weights"] = .string("float16") }
        if bfloat16 { fields["precision"] = .string("bfloat16") }
        return .object(fields)
    }

    /// Random weights in [-0.6, 0.6] like the golden script's.
    static func random(_ cell: Cell, inputSize: Int, hidden: Int, layers: Int = 1, directions: Int = 1,
                       bias: Bool = true, relu: Bool = false, seed: UInt64) -> ReferenceRecurrent {
        let g = cell == .lstm ? 4 : cell == .gru ? 3 : 1
        var weights: [String: [Float]] = [:]
        var s = seed
        for k in 0..<layers {
            for d in 0..<directions {
                let id = "l\(k)" + (d == 1 ? "_reverse" : "")
                let inK = k == 0 ? inputSize : directions * hidden
                s += 4
                weights["weight_ih_\(id)"] = testValues(g * hidden * inK, seed: s, scale: 0.6)
                weights["weight_hh_\(id)"] = testValues(g * hidden * hidden, seed: s + 1, scale: 0.6)
                if bias {
                    weights["bias_ih_\(id)"] = testValues(g * hidden, seed: s + 2, scale: 0.6)
                    weights["bias_hh_\(id)"] = testValues(g * hidden, seed: s + 3, scale: 0.6)
                }
            }
        }
        return ReferenceRecurrent(cell: cell, inputSize: inputSize, hidden: hidden, layers: layers,
                                  directions: directions, bias: bias, relu: relu, weights: weights)
    }

    /// This reference with every weight matrix whose name starts with `prefix` ("weight_hh", "weight")
    /// passed through `round`: what a precision the engine computes in makes of them.
    func roundingWeights(_ prefix: String, _ round: (Float) -> Float) -> ReferenceRecurrent {
        var rounded = self
        for (key, values) in weights where key.hasPrefix(prefix) {
            rounded.weights[key] = values.map(round)
        }
        return rounded
    }

    /// A model of this one layer over features, through the engine's public API.
    func model(name: String = "rec") throws -> Model {
        let arch = try Architecture(json: .object([
            "format": .int(1), "input": .object(["kind": .string("features"), "size": .int(inputSize)]),
            "layers": .array([layerJSON(name: name)]),
        ]))
        var tensors: [String: Tensor] = [:]
        for (key, values) in weights {
            let rows = gates * hidden
            let shape = key.hasPrefix("bias") ? [rows] : [rows, values.count / rows]
            tensors["\(name).\(key)"] = try .float32(values, shape: shape)
        }
        return try Model(architecture: arch, weights: tensors)
    }

    private func matVec(_ w: [Float], rows: Range<Int>, columns: Int, _ v: [Double]) -> [Double] {
        let v = productInputRounding.map { v.map($0) } ?? v
        return rows.map { r in (0..<columns).reduce(0.0) { $0 + Double(w[r * columns + $1]) * v[$1] } }
    }

    private func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

    /// One sequence: x [T][F] → (y [T][D·H] zero past length, h_n [L·D][H], c_n [L·D][H]).
    func run(_ x: [[Double]], length: Int, h0: [[Double]]?, c0: [[Double]]?) -> (y: [[Double]], h: [[Double]], c: [[Double]]) {
        var input = x
        var hN: [[Double]] = [], cN: [[Double]] = []
        for k in 0..<layers {
            var out = [[Double]](repeating: [Double](repeating: 0, count: directions * hidden), count: x.count)
            for d in 0..<directions {
                let id = "l\(k)" + (d == 1 ? "_reverse" : "")
                let wIH = weights["weight_ih_\(id)"]!, wHH = weights["weight_hh_\(id)"]!
                let bIH = weights["bias_ih_\(id)"].map { $0.map(Double.init) } ?? [Double](repeating: 0, count: gates * hidden)
                let bHH = weights["bias_hh_\(id)"].map { $0.map(Double.init) } ?? [Double](repeating: 0, count: gates * hidden)
                let inK = input[0].count
                var h = h0?[k * directions + d] ?? [Double](repeating: 0, count: hidden)
                var c = c0?[k * directions + d] ?? [Double](repeating: 0, count: hidden)
                let order = d == 0 ? Array(0..<length) : Array((0..<length).reversed())
                for t in order {
                    let H = hidden
                    func pre(_ g: Int) -> ([Double], [Double]) {
                        let rows = (g * H)..<((g + 1) * H)
                        let a = zip(matVec(wIH, rows: rows, columns: inK, input[t]), bIH[rows]).map(+)
                        let b = zip(matVec(wHH, rows: rows, columns: H, h), bHH[rows]).map(+)
                        return (a, b)
                    }
                    switch cell {
                    case .rnn:
                        let (a, b) = pre(0)
                        h = zip(a, b).map { relu ? max(0, $0 + $1) : tanh($0 + $1) }
                    case .lstm:
                        let (ia, ib) = pre(0), (fa, fb) = pre(1), (ga, gb) = pre(2), (oa, ob) = pre(3)
                        for j in 0..<H {
                            let i = sigmoid(ia[j] + ib[j]), f = sigmoid(fa[j] + fb[j])
                            let g = tanh(ga[j] + gb[j]), o = sigmoid(oa[j] + ob[j])
                            c[j] = f * c[j] + i * g
                            h[j] = o * tanh(c[j])
                        }
                    case .gru:
                        let (ra, rb) = pre(0), (za, zb) = pre(1), (na, nb) = pre(2)
                        for j in 0..<H {
                            let r = sigmoid(ra[j] + rb[j]), z = sigmoid(za[j] + zb[j])
                            let n = tanh(na[j] + r * nb[j])
                            h[j] = (1 - z) * n + z * h[j]
                        }
                    }
                    out[t].replaceSubrange((d * H)..<((d + 1) * H), with: h)
                }
                hN.append(h)
                cN.append(c)
            }
            input = out
        }
        return (input, hN, cN)
    }
}
