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
        try makeLayer(config, loading: LayerWeights(weights))
    }

    /// The weight is packed a block of rows at a time as it is read (LayerWeights.take(_:rows:rowLength:_:)).
    func makeLayer(_ config: LayerConfig, loading weights: LayerWeights) throws(RecurError) -> any Layer {
        let (inputs, outputs) = (try config.integer("in_features"), try config.integer("out_features"))
        let packedWeight: PackedValues<Float> = try weights.packed("weight", rows: outputs, rowLength: inputs,
                                                                   count: rk_gemm_packed_size(outputs, inputs), layer: config.name) {
            firstRow, rowCount, values, packed in rk_gemm_pack_rows(outputs, inputs, firstRow, rowCount, values, packed)
        }
        return LinearLayer(name: config.name, inputs: inputs, outputs: outputs, packedWeight: packedWeight, bias: try weights.take("bias"))
    }
}

struct LinearLayer: Layer {
    let name: String
    let inputs: Int
    let outputs: Int
    /// The weight [outputs, inputs] in rk_gemm_pack's layout
    let packedWeight: PackedValues<Float>
    /// [outputs]
    let bias: [Float]?

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
