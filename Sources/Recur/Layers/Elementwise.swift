import CRecurKernels

/// Layers without parameters that keep the shape: dropout (identity at inference), relu, tanh,
/// sigmoid, and softmax / log_softmax over the last axis.
struct ElementwiseKind: LayerKind {
    enum Function: String, CaseIterable, Sendable {
        case dropout, relu, tanh, sigmoid, softmax, log_softmax
    }

    let function: Function
    var typeName: String { function.rawValue }

    func parameters(_ config: LayerConfig) throws(RecurError) -> [ParameterDeclaration] {
        if function == .dropout {
            let p = try config.number("p", default: 0.5)
            guard (0...1).contains(p) else {
                throw RecurError.format("layer '\(config.name)' (dropout): p must be in [0, 1], found \(p)")
            }
        }
        return []
    }

    func makeLayer(_ config: LayerConfig, weights: [String: [Float]]) throws(RecurError) -> any Layer {
        ElementwiseLayer(name: config.name, function: function)
    }
}

struct ElementwiseLayer: Layer {
    let name: String
    let function: ElementwiseKind.Function

    func outputShape(for input: SignalShape, context: inout ShapeContext) throws(RecurError) -> SignalShape {
        if case .tokens = input {
            throw RecurError.format("layer '\(name)' (\(function.rawValue)): needs features, but its input is \(input)")
        }
        return input
    }

    func forward(_ input: Signal, context: inout ForwardContext) throws(RecurError) -> Signal {
        switch input {
        case .sequence(var x, let batch, let steps, let features):
            apply(&x, width: features)
            return .sequence(x, batch: batch, steps: steps, features: features)
        case .pooled(var x, let batch, let features):
            apply(&x, width: features)
            return .pooled(x, batch: batch, features: features)
        case .tokens:
            throw RecurError(.internal, "layer '\(name)' was given a signal that shape checking refuses")
        }
    }

    private func apply(_ x: inout [Float], width: Int) {
        let n = x.count
        x.withUnsafeMutableBufferPointer { x in
            let p = x.baseAddress
            switch function {
            case .dropout: break
            case .relu: rk_relu(n, p)
            case .tanh: rk_tanh(n, p)
            case .sigmoid: rk_sigmoid(n, p)
            case .softmax: rk_softmax_rows(width == 0 ? 0 : n / width, width, p)
            case .log_softmax: rk_log_softmax_rows(width == 0 ? 0 : n / width, width, p)
            }
        }
    }
}
