/// `pool`: per-step [B, T, F] → one vector per sequence [B, F], over each sequence's valid steps.
struct PoolKind: LayerKind {
    var typeName: String { "pool" }

    func parameters(_ config: LayerConfig) throws(RecurError) -> [ParameterDeclaration] {
        _ = try mode(config)
        return []
    }

    private func mode(_ config: LayerConfig) throws(RecurError) -> PoolLayer.Mode {
        PoolLayer.Mode(rawValue: try config.choice("mode", PoolLayer.Mode.allCases.map(\.rawValue)))!
    }

    func makeLayer(_ config: LayerConfig, weights: [String: [Float]]) throws(RecurError) -> any Layer {
        PoolLayer(name: config.name, mode: try mode(config))
    }
}

struct PoolLayer: Layer {
    enum Mode: String, CaseIterable, Sendable {
        case last, mean, max
        case finalState = "final_state"
    }

    let name: String
    let mode: Mode

    func outputShape(for input: SignalShape, context: inout ShapeContext) throws(RecurError) -> SignalShape {
        guard case .sequence(let features) = input else {
            throw RecurError.format("layer '\(name)' (pool): needs per-step features, but its input is \(input)")
        }
        guard mode == .finalState else { return .pooled(features: features) }
        guard let width = context.finalStateWidth else {
            throw RecurError.format("layer '\(name)' (pool final_state): no recurrent layer precedes it")
        }
        return .pooled(features: width)
    }

    func forward(_ input: Signal, context: inout ForwardContext) throws(RecurError) -> Signal {
        guard case .sequence(let x, let batch, let steps, let features) = input else {
            throw RecurError(.internal, "layer '\(name)' was given a signal that shape checking refuses")
        }
        if mode == .finalState {
            guard let state = context.finalStateFeatures else {
                throw RecurError(.internal, "layer '\(name)': no final state reached the pool")
            }
            return .pooled(state, batch: batch, features: state.count / max(batch, 1))
        }
        var out = [Float](repeating: 0, count: batch * features)
        for b in 0..<batch {
            let length = context.lengths?[b] ?? steps
            let row = b * steps * features
            let target = b * features
            switch mode {
            case .last:
                let start = row + (length - 1) * features
                out.replaceSubrange(target..<(target + features), with: x[start..<(start + features)])
            case .mean:
                for t in 0..<length {
                    for f in 0..<features { out[target + f] += x[row + t * features + f] }
                }
                for f in 0..<features { out[target + f] /= Float(length) }
            case .max:
                for f in 0..<features {
                    var best = -Float.infinity
                    // A NaN wins and stays, as in PyTorch's max (Swift.max would skip it).
                    for t in 0..<length {
                        let value = x[row + t * features + f]
                        if value > best || value.isNaN { best = value }
                    }
                    out[target + f] = best
                }
            case .finalState:
                break
            }
        }
        return .pooled(out, batch: batch, features: features)
    }
}
