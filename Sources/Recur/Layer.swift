import Synchronization

/// The shape of what flows between layers, without the batch and step counts.
public enum SignalShape: Sendable, Equatable, CustomStringConvertible {
    /// Token ids [B, T] below `vocabulary`.
    case tokens(vocabulary: Int)
    /// Per-step features [B, T, F].
    case sequence(features: Int)
    /// One vector per sequence [B, F].
    case pooled(features: Int)

    public var description: String {
        switch self {
        case .tokens(let v): "token ids [B, T] below \(v)"
        case .sequence(let f): "per-step features [B, T, \(f)]"
        case .pooled(let f): "pooled features [B, \(f)]"
        }
    }
}

/// Values flowing between layers at run time.
public enum Signal: Sendable {
    /// Token ids [B, T].
    case tokens([Int32], batch: Int, steps: Int)
    /// Per-step features [B, T, F].
    case sequence([Float], batch: Int, steps: Int, features: Int)
    /// One vector per sequence [B, F].
    case pooled([Float], batch: Int, features: Int)
}

/// A state tensor a recurrent layer carries: given as `<layer>.<name>0`, returned as `<layer>.<name>_n`,
/// shaped [rows, B, width] (rows = num_layers · directions).
public struct StateDeclaration: Sendable, Equatable {
    public let name: String
    public let rows: Int
    public let width: Int

    public init(name: String, rows: Int, width: Int) {
        self.name = name
        self.rows = rows
        self.width = width
    }
}

/// The names a state of layer `layer` goes by: its initial value as an input ("L.h0") and its final
/// value as an output ("L.h_n").
func stateTensorNames(layer: String, state: String) -> (initial: String, final: String) {
    ("\(layer).\(state)0", "\(layer).\(state)_n")
}

/// What shape checking carries from layer to layer.
public struct ShapeContext: Sendable {
    /// Width of the nearest preceding recurrent layer's final state (top layer, all directions).
    public var finalStateWidth: Int?
}

/// What one forward pass carries from layer to layer besides the signal.
public struct ForwardContext: Sendable {
    /// Per-sequence valid step counts, each in 1 ... T; nil when every sequence has T steps.
    public let lengths: [Int]?
    /// Initial states by input name ("L.h0"): [rows, B, width]. Absent means zeros.
    public var initialStates: [String: [Float]]
    /// Final states by output name ("L.h_n"), in the order layers produced them.
    public internal(set) var finalStates: [NamedTensor] = []
    /// The nearest preceding recurrent layer's top final state [B, D·H] (for `pool` `final_state`).
    public var finalStateFeatures: [Float]?

    public init(lengths: [Int]?, initialStates: [String: [Float]]) {
        self.lengths = lengths
        self.initialStates = initialStates
    }

    public mutating func emitFinalState(_ name: String, _ tensor: Tensor) {
        finalStates.append(NamedTensor(name: name, tensor: tensor))
    }
}

/// A layer of a loaded model: immutable, shared by every thread that runs the model.
public protocol Layer: Sendable {
    var name: String { get }
    /// The state this layer carries between steps; empty for stateless layers.
    var states: [StateDeclaration] { get }
    /// False for layers that need the whole sequence (a bidirectional layer's backward direction).
    var canStream: Bool { get }
    /// What the layer makes of `input`; throws a format error naming the layer when it does not fit.
    func outputShape(for input: SignalShape, context: inout ShapeContext) throws(RecurError) -> SignalShape
    /// Computes the layer. Per-step outputs at padding steps need not be zero: the model zeroes them.
    func forward(_ input: Signal, context: inout ForwardContext) throws(RecurError) -> Signal
}

extension Layer {
    public var states: [StateDeclaration] { [] }
    public var canStream: Bool { true }
}

/// A parameter a layer needs from the model file: `<layer>.<suffix>` with exactly `shape`.
public struct ParameterDeclaration: Sendable, Equatable {
    public let suffix: String
    public let shape: [Int]

    public init(_ suffix: String, _ shape: [Int]) {
        self.suffix = suffix
        self.shape = shape
    }
}

/// One layer object of the architecture JSON, with typed accessors whose errors name the layer and key.
public struct LayerConfig: Sendable {
    public let name: String
    public let type: String
    public let fields: [String: JSONValue]

    public init(name: String, type: String, fields: [String: JSONValue]) {
        self.name = name
        self.type = type
        self.fields = fields
    }

    private func fail(_ key: String, _ expected: String) -> RecurError {
        .format("layer '\(name)' (\(type)): \(key) must be \(expected), found \(fields[key]?.serialized() ?? "nothing")")
    }

    /// A whole number ≥ `minimum`; `fallback` when the key is absent (nil: required).
    public func integer(_ key: String, default fallback: Int? = nil, minimum: Int = 1) throws(RecurError) -> Int {
        guard let value = fields[key] else {
            if let fallback { return fallback }
            throw fail(key, "an integer ≥ \(minimum)")
        }
        guard let i = value.intValue, i >= minimum, i <= 1 << 40 else { throw fail(key, "an integer ≥ \(minimum)") }
        return i
    }

    /// true or false; `fallback` when the key is absent (nil: required).
    public func boolean(_ key: String, default fallback: Bool?) throws(RecurError) -> Bool {
        guard let value = fields[key] else {
            if let fallback { return fallback }
            throw fail(key, "true or false")
        }
        guard let b = value.boolValue else { throw fail(key, "true or false") }
        return b
    }

    /// A finite number; `fallback` when the key is absent (nil: required).
    public func number(_ key: String, default fallback: Double?) throws(RecurError) -> Double {
        guard let value = fields[key] else {
            if let fallback { return fallback }
            throw fail(key, "a number")
        }
        guard let d = value.doubleValue, d.isFinite else { throw fail(key, "a number") }
        return d
    }

    /// One of `choices`; `fallback` when absent (nil: required).
    public func choice(_ key: String, _ choices: [String], default fallback: String? = nil) throws(RecurError) -> String {
        guard let value = fields[key] else {
            if let fallback { return fallback }
            throw fail(key, "one of \(choices.joined(separator: ", "))")
        }
        guard let s = value.stringValue, choices.contains(s) else {
            throw fail(key, "one of \(choices.joined(separator: ", "))")
        }
        return s
    }
}

/// A layer type: what the architecture's `type` string names. Built-in types and plugins alike
/// register one of these with a `LayerRegistry`.
public protocol LayerKind: Sendable {
    /// The `type` string, e.g. "lstm".
    var typeName: String { get }
    /// The parameters a layer with this config needs, so the loader can check files generically.
    func parameters(_ config: LayerConfig) throws(RecurError) -> [ParameterDeclaration]
    /// Builds the layer; `weights` holds every declared parameter by suffix, with its declared shape.
    func makeLayer(_ config: LayerConfig, weights: [String: [Float]]) throws(RecurError) -> any Layer
    /// Builds the layer from parameters decoded as it takes them. The default takes them all and
    /// calls `makeLayer(_:weights:)`; a kind that repacks its weights takes one tensor at a time,
    /// so loading never holds more than one of them in both layouts.
    func makeLayer(_ config: LayerConfig, loading weights: LayerWeights) throws(RecurError) -> any Layer
}

extension LayerKind {
    public func makeLayer(_ config: LayerConfig, loading weights: LayerWeights) throws(RecurError) -> any Layer {
        try makeLayer(config, weights: weights.takeAll())
    }
}

/// A layer's declared parameters while its kind builds it, each decoded from the model file (or
/// copied from the given weights) only when taken, with the shape its declaration states (already
/// checked, as every parameter of every layer is before any layer is built).
public struct LayerWeights {
    private let suffixes: [String]
    /// The parameter's elements in the range (nil: all of them).
    private let decode: (String, Range<Int>?) throws(RecurError) -> [Float]
    /// The precision the parameter is stored in.
    private let storedPrecision: (String) -> StoredPrecision
    /// The 16 bits of the parameter's elements in the range, where it is stored in float16 or bfloat16.
    private let decodeHalfBits: (String, Range<Int>) throws(RecurError) -> [UInt16]

    init(suffixes: [String], storedPrecision: @escaping (String) -> StoredPrecision = { _ in .float32 },
         decodeHalfBits: @escaping (String, Range<Int>) throws(RecurError) -> [UInt16] = LayerWeights.noHalfBits,
         decode: @escaping (String, Range<Int>?) throws(RecurError) -> [Float]) {
        self.suffixes = suffixes
        self.storedPrecision = storedPrecision
        self.decodeHalfBits = decodeHalfBits
        self.decode = decode
    }

    /// `decodeHalfBits` where every parameter is stored in float32.
    static func noHalfBits(_ name: String, _ elements: Range<Int>) throws(RecurError) -> [UInt16] {
        throw RecurError(.internal, "\(name) is not stored in 16 bits")
    }

    /// The precision a parameter's values have where they come from: a model file's dtype (F64 counts as
    /// float32, what loading makes of it), float32 for weights given in memory.
    package enum StoredPrecision: Sendable {
        case float32, float16, bfloat16
    }

    /// The precision the parameter named `suffix` is stored in, so that a kind may keep values of a
    /// 16-bit dtype in it rather than in float32 (every value `take` decodes from them is exact in it).
    package func precision(_ suffix: String) -> StoredPrecision { storedPrecision(suffix) }

    /// Parameters already in memory, by suffix.
    init(_ weights: [String: [Float]]) {
        self.init(suffixes: Array(weights.keys), decode: { suffix, elements in Self.elements(elements, of: weights[suffix] ?? []) })
    }

    /// The parameter named `suffix` (as `parameters` declared it), decoded now; nil when undeclared.
    public func take(_ suffix: String) throws(RecurError) -> [Float]? {
        guard suffixes.contains(suffix) else { return nil }
        return try decode(suffix, nil)
    }

    /// The parameter named `suffix`, declared [rows, rowLength], decoded a block of whole rows at a
    /// time, about 256 KiB or an eighth of the matrix, whichever is less: `body` gets each block's
    /// first row and values [block rows, rowLength], which are released before the next block is
    /// read. A kind that repacks a matrix takes it this way, so that loading holds the packed copy
    /// and one block, never the whole matrix twice. False when undeclared.
    public func take(_ suffix: String, rows: Int, rowLength: Int,
                     _ body: (_ firstRow: Int, _ values: [Float]) throws(RecurError) -> Void) throws(RecurError) -> Bool {
        try takeBlocks(suffix, rows: rows, rowLength: rowLength, decode: { suffix, elements throws(RecurError) in try decode(suffix, elements) }, body)
    }

    /// The parameter named `suffix`, declared [rows, rowLength] and stored in float16 or bfloat16
    /// (`precision`), as its 16 bits, a block of whole rows at a time as `take(_:rows:rowLength:_:)`
    /// gives its floats: a kind that keeps such a parameter in its dtype reads it with no conversion.
    /// False when undeclared.
    package func takeHalfBits(_ suffix: String, rows: Int, rowLength: Int,
                              _ body: (_ firstRow: Int, _ bits: [UInt16]) throws(RecurError) -> Void) throws(RecurError) -> Bool {
        try takeBlocks(suffix, rows: rows, rowLength: rowLength, decode: decodeHalfBits, body)
    }

    /// `body` with each block's first row and its elements as `decode` reads them, in order; false
    /// when `suffix` is undeclared.
    private func takeBlocks<Value>(_ suffix: String, rows: Int, rowLength: Int,
                                   decode: (String, Range<Int>) throws(RecurError) -> [Value],
                                   _ body: (_ firstRow: Int, _ values: [Value]) throws(RecurError) -> Void) throws(RecurError) -> Bool {
        guard suffixes.contains(suffix) else { return false }
        let blockRows = max(1, min(Self.blockElements / max(rowLength, 1), rows / Self.leastBlocks))
        for firstRow in stride(from: 0, to: rows, by: blockRows) {
            try body(firstRow, try decode(suffix, (firstRow * rowLength)..<(min(rows, firstRow + blockRows) * rowLength)))
        }
        return true
    }

    /// The parameter named `suffix`, declared [rows, rowLength], packed into `count` zeroed values as
    /// it is read: `pack` puts each block's rows (their first row, row count and values) where they go.
    /// The layer named `layer` must have declared it.
    package func packed<Element>(_ suffix: String, rows: Int, rowLength: Int, count: Int, layer: String,
                                 _ pack: (_ firstRow: Int, _ rowCount: Int, _ values: [Float], _ destination: UnsafeMutablePointer<Element>) throws(RecurError) -> Void)
        throws(RecurError) -> PackedValues<Element> {
        try PackedValues(count: count) { (destination: UnsafeMutablePointer<Element>) throws(RecurError) in
            let declared = try take(suffix, rows: rows, rowLength: rowLength) { firstRow, values throws(RecurError) in
                try pack(firstRow, values.count / max(rowLength, 1), values, destination)
            }
            guard declared else { throw RecurError(.internal, "layer '\(layer)': parameter \(suffix) was not declared") }
        }
    }

    /// Every declared parameter by suffix.
    public func takeAll() throws(RecurError) -> [String: [Float]] {
        var all: [String: [Float]] = [:]
        for suffix in suffixes { all[suffix] = try decode(suffix, nil) }
        return all
    }

    /// Elements in a block of `take(_:rows:rowLength:_:)`: 256 KiB of float32 (a mebibyte made an
    /// LSTM-256's 2 MiB load peak at 1.43x the file) or, for a matrix of less than 2 MiB, an eighth
    /// of it (whole, a 0.5 MiB LSTM-128 peaked at 1.50x its file).
    private static let blockElements = 1 << 16
    private static let leastBlocks = 8

    /// `values[range]`, or all of them for nil: what a decode closure over parameters in memory returns.
    static func elements(_ range: Range<Int>?, of values: [Float]) -> [Float] {
        guard let range else { return values }
        return Array(values[range.clamped(to: values.indices)])
    }
}

/// Layer types by name. `shared` holds the built-in types; plugins add theirs to it.
public final class LayerRegistry: Sendable {
    private let kinds: Mutex<[String: any LayerKind]>

    public init(_ kinds: [any LayerKind] = []) {
        self.kinds = Mutex(Dictionary(uniqueKeysWithValues: kinds.map { ($0.typeName, $0) }))
    }

    /// The registry models load against unless told otherwise.
    public static let shared = LayerRegistry(builtinLayerKinds)

    /// A new registry with the built-in types only, for a host that keeps its plugins apart.
    public static func builtins() -> LayerRegistry { LayerRegistry(builtinLayerKinds) }

    /// Adds `kind`; a name already taken is refused and nothing changes.
    public func register(_ kind: any LayerKind) throws(RecurError) {
        let added = kinds.withLock { table in
            guard table[kind.typeName] == nil else { return false }
            table[kind.typeName] = kind
            return true
        }
        guard added else { throw RecurError(.invalidArgument, "layer type '\(kind.typeName)' is already registered") }
    }

    /// Adds several kinds, all or none.
    public func register(all newKinds: [any LayerKind]) throws(RecurError) {
        let clash: String? = kinds.withLock { table in
            var seen = Set(table.keys)
            for kind in newKinds where !seen.insert(kind.typeName).inserted { return kind.typeName }
            for kind in newKinds { table[kind.typeName] = kind }
            return nil
        }
        if let clash { throw RecurError(.invalidArgument, "layer type '\(clash)' is already registered") }
    }

    public func kind(named name: String) -> (any LayerKind)? {
        kinds.withLock { $0[name] }
    }

    public var typeNames: [String] {
        kinds.withLock { $0.keys.sorted() }
    }
}

/// A tensor with its name, as model outputs are listed.
public struct NamedTensor: Sendable, Equatable {
    public let name: String
    public let tensor: Tensor

    public init(name: String, tensor: Tensor) {
        self.name = name
        self.tensor = tensor
    }
}
