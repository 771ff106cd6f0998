import CRecurKernels

/// `embedding`: token ids [B, T] → [B, T, embedding_dim], rows of `weight` [num_embeddings, dim].
struct EmbeddingKind: LayerKind {
    var typeName: String { "embedding" }

    func parameters(_ config: LayerConfig) throws(RecurError) -> [ParameterDeclaration] {
        [ParameterDeclaration("weight", [try config.integer("num_embeddings"), try config.integer("embedding_dim")])]
    }

    func makeLayer(_ config: LayerConfig, weights: [String: [Float]]) throws(RecurError) -> any Layer {
        try makeLayer(config, loading: LayerWeights(weights))
    }

    func makeLayer(_ config: LayerConfig, loading weights: LayerWeights) throws(RecurError) -> any Layer {
        let count = try config.integer("num_embeddings"), dimension = try config.integer("embedding_dim")
        return EmbeddingLayer(name: config.name, count: count, dimension: dimension,
                              table: try EmbeddingTable(weights, rows: count, rowLength: dimension, layer: config.name))
    }
}

/// An embedding's rows in the precision they are stored in. A table saved in float16 or bfloat16 stays
/// in it, half the memory of float32 (loading peaks at about its file's size, not twice it); a row is
/// widened to float32 as it is looked up, exactly, so every value is the one converting the whole table
/// on load (model-format.md) would give.
enum EmbeddingTable: Sendable {
    /// [rows, rowLength]
    case float32([Float])
    /// [rows, rowLength], IEEE binary16 bits
    case float16([UInt16])
    /// [rows, rowLength], the high halves of float32 bits
    case bfloat16([UInt16])

    init(_ weights: LayerWeights, rows: Int, rowLength: Int, layer: String) throws(RecurError) {
        let precision = weights.precision("weight")
        guard precision != .float32 else {
            guard let table = try weights.take("weight") else {
                throw RecurError(.internal, "layer '\(layer)': parameter weight was not declared")
            }
            self = .float32(table)
            return
        }
        // The file's 16 bits as they are, a block of rows at a time.
        var failure: RecurError?
        let bits = [UInt16](unsafeUninitializedCapacity: rows * rowLength) { table, initialized in
            do throws(RecurError) {
                let declared = try weights.takeHalfBits("weight", rows: rows, rowLength: rowLength) { firstRow, block in
                    guard let table = table.baseAddress else { return }
                    block.withUnsafeBufferPointer { block in
                        if let first = block.baseAddress { (table + firstRow * rowLength).initialize(from: first, count: block.count) }
                    }
                }
                guard declared else { throw RecurError(.internal, "layer '\(layer)': parameter weight was not declared") }
                initialized = rows * rowLength
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        self = precision == .float16 ? .float16(bits) : .bfloat16(bits)
    }

    /// Row `row` [rowLength] written to `destination` as float32.
    func widen(row: Int, rowLength: Int, into destination: UnsafeMutablePointer<Float>) {
        let first = row * rowLength
        switch self {
        case .float32(let table):
            table.withUnsafeBufferPointer { destination.update(from: $0.baseAddress! + first, count: rowLength) }
        case .float16(let table):
            table.withUnsafeBufferPointer { rk_widen_half(rowLength, $0.baseAddress! + first, destination) }
        case .bfloat16(let table):
            table.withUnsafeBufferPointer { table in
                for i in 0..<rowLength { destination[i] = Float(bitPattern: UInt32(table[first + i]) << 16) }
            }
        }
    }
}

struct EmbeddingLayer: Layer {
    let name: String
    let count: Int
    let dimension: Int
    /// [count, dimension]
    let table: EmbeddingTable

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
        out.withUnsafeMutableBufferPointer { out in
            for (i, id) in ids.enumerated() {
                table.widen(row: Int(id), rowLength: dimension, into: out.baseAddress! + i * dimension)
            }
        }
        return .sequence(out, batch: batch, steps: steps, features: dimension)
    }
}
