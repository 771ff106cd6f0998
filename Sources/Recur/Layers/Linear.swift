import CRecurKernels

/// `linear`: y = x Wᵀ + b over the last axis, W [out_features, in_features].
struct LinearKind: LayerKind {
    var typeName: String { "linear" }

    func parameters(_ config: LayerConfig) throws(RecurError) -> [ParameterDeclaration] {
        let (input, output) = (try config.integer("in_features"), try config.integer("out_features"))
        var declared = [ParameterDeclaration("weight", [output, input])]
        if try config.boolean("bias", default: true) { declared.append(ParameterDeclaration("bias", [output])) }
        return declared
    }

    func makeLayer(_ config: LayerConfig, weights: [String: [Float]]) throws(RecurError) -> any Layer {
        LinearLayer(name: config.name, inputs: try config.integer("in_features"), outputs: try config.integer("out_features"),
                    weight: weights["weight"] ?? [], bias: weights["bias"])
    }
}

struct LinearLayer: Layer {
    let name: String
    let inputs: Int
    let outputs: Int
    /// rk_gemm_pack of the weight [outputs, inputs]
    let packedWeight: PackedValues<Float>
    /// [outputs]
    let bias: [Float]?

    /// `weight` [outputs, inputs] is packed for the kernel; the packed copy replaces it.
    init(name: String, inputs: Int, outputs: Int, weight: [Float], bias: [Float]?) {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.bias = bias
        packedWeight = PackedValues(count: rk_gemm_packed_size(outputs, inputs)) { rk_gemm_pack(outputs, inputs, weight, $0) }
    }

    func outputShape(for input: SignalShape, context: inout ShapeContext) throws(RecurError) -> SignalShape {
        switch input {
        case .sequence(inputs): return .sequence(features: outputs)
        case .pooled(inputs): return .pooled(features: outputs)
        default: throw RecurError.format("layer '\(name)': in_features is \(inputs), but its input is \(input)")
        }
    }

    func forward(_ input: Signal, context: inout ForwardContext) throws(RecurError) -> Signal {
        switch input {
        case .sequence(let x, let batch, let steps, _):
            return .sequence(apply(x, rows: batch * steps), batch: batch, steps: steps, features: outputs)
        case .pooled(let x, let batch, _):
            return .pooled(apply(x, rows: batch), batch: batch, features: outputs)
        case .tokens:
            throw RecurError(.internal, "layer '\(name)' was given a signal that shape checking refuses")
        }
    }

    /// x [rows, inputs] → [rows, outputs]
    private func apply(_ x: [Float], rows: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * outputs) { y, initialized in
            packedWeight.withPointer { w in
                withOptionalPointer(bias) { b in
                    rk_gemm_packed_parallel(rows, outputs, inputs, x, inputs, w, b, y.baseAddress, outputs)
                }
            }
            initialized = rows * outputs
        }
    }
}
