/// `embedding`: token ids [B, T] → [B, T, embedding_dim], rows of `weight` [num_embeddings, dim].
struct EmbeddingKind: LayerKind {
    var typeName: String { "embedding" }

    func parameters(_ config: LayerConfig) throws(RecurError) -> [ParameterDeclaration] {
        [ParameterDeclaration("weight", [try config.integer("num_embeddings"), try config.integer("embedding_dim")])]
    }

    func makeLayer(_ config: LayerConfig, weights: [String: [Float]]) throws(RecurError) -> any Layer {
        EmbeddingLayer(name: config.name, count: try config.integer("num_embeddings"),
                       dimension: try config.integer("embedding_dim"), table: weights["weight"] ?? [])
    }
}

struct EmbeddingLayer: Layer {
    let name: String
    let count: Int
    let dimension: Int
    /// [count, dimension]
    let table: [Float]

    func outputShape(for input: SignalShape, context: inout ShapeContext) throws(RecurError) -> SignalShape {
        guard case .tokens = input else {
            throw RecurError.format("layer '\(name)': embedding needs token ids, but its input is \(input)")
        }
        return .sequence(features: dimension)
    }

    func forward(_ input: Signal, context: inout ForwardContext) throws(RecurError) -> Signal {
        guard case .tokens(let ids, let batch, let steps) = input else {
            throw RecurError(.internal, "layer '\(name)' was given a signal that shape checking refuses")
        }
        if let bad = ids.firstIndex(where: { $0 < 0 || Int($0) >= count }) {
            throw RecurError.invalidInput("input[\(bad / steps), \(bad % steps)] is token id \(ids[bad]), outside layer '\(name)''s [0, \(count))")
        }
        var out = [Float](repeating: 0, count: ids.count * dimension)
        table.withUnsafeBufferPointer { table in
            out.withUnsafeMutableBufferPointer { out in
                for (i, id) in ids.enumerated() {
                    (out.baseAddress! + i * dimension).update(from: table.baseAddress! + Int(id) * dimension, count: dimension)
                }
            }
        }
        return .sequence(out, batch: batch, steps: steps, features: dimension)
    }
}
