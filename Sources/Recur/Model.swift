import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A loaded model: immutable after loading, so any number of threads may run it at once.
public final class Model: Sendable {
    public let architecture: Architecture
    public let layers: [any Layer]
    /// What the last layer produces.
    public let outputShape: SignalShape
    /// Number of float parameters.
    public let parameterCount: Int
    /// Present when the architecture has a tokenizer and a vocabulary.
    public let tokenizer: Tokenizer?
    /// An upper bound on the floats per (sequence, step) of any buffer a run allocates: the widest
    /// signal times 4 (an lstm's gate projection).
    let widestStep: Int
    /// State inputs the model accepts ("L.h0", "L.c0") with their shape for batch B: [rows, B, width].
    public let stateInputs: [(name: String, rows: Int, width: Int)]
    /// Output names in the order `run` returns them: "output", then each recurrent layer's states.
    public let outputNames: [String]

    /// Loads a model file (model-format.md), checking every rule of the format.
    public convenience init(path: String, registry: LayerRegistry = .shared) throws(RecurError) {
        let file = try SafeTensorsFile(path: path)
        try self.init(file: file, source: path, registry: registry)
    }

    /// Loads a model from a file image in memory.
    public convenience init(bytes: [UInt8], registry: LayerRegistry = .shared) throws(RecurError) {
        let file = try SafeTensorsFile(bytes: bytes)
        try self.init(file: file, source: "<memory>", registry: registry)
    }

    /// Loads a model from a file image that is read only while this initializer runs: the model
    /// keeps none of it, and no copy of it is made (the load holds the image and the packed model).
    public convenience init(borrowing image: UnsafeRawBufferPointer, registry: LayerRegistry = .shared) throws(RecurError) {
        let file = try SafeTensorsFile(borrowing: image, source: "<memory>")
        try self.init(file: file, source: "<memory>", registry: registry)
    }

    private convenience init(file: SafeTensorsFile, source: String, registry: LayerRegistry) throws(RecurError) {
        // A layer kind may keep the LayerWeights it was given; a borrowed image may be gone once the load returns.
        let window = LoadWindow()
        defer { window.close() }
        guard let text = file.metadata["recur"] else {
            throw RecurError.format("\(source): no __metadata__[\"recur\"] architecture; not a Recur model file")
        }
        let architecture = try Architecture(parsing: text)
        var entries: [String: SafeTensorsFile.Entry] = [:]
        for entry in file.entries { entries[entry.name] = entry }
        try self.init(architecture: architecture, registry: registry, tensorNames: Set(entries.keys)) { name, shape throws(RecurError) in
            guard let entry = entries[name] else { throw RecurError.format("missing tensor \(name) with shape \(shape)") }
            guard entry.shape == shape else {
                throw RecurError.format("tensor \(name): expected shape \(shape), found \(entry.shape)")
            }
            guard SafeTensorsFile.floatDTypes.contains(entry.dtype) else {
                throw RecurError.format("tensor \(name): dtype \(entry.dtype) is not a weight dtype (F32, F16, BF16, F64)")
            }
        } storedPrecision: { name in
            switch entries[name]?.dtype {
            case "F16": .float16
            case "BF16": .bfloat16
            default: .float32
            }
        } decodeHalfBits: { name, elements throws(RecurError) in
            try window.check(name)
            guard let entry = entries[name], let bits = try file.halfBits(entry, elements: elements) else {
                throw RecurError(.internal, "tensor \(name) was checked but is gone or not in 16 bits")
            }
            return bits
        } decode: { name, elements throws(RecurError) in
            try window.check(name)
            guard let entry = entries[name] else { throw RecurError(.internal, "tensor \(name) was checked but is gone") }
            return try file.floats(entry, elements: elements) ?? []
        }
    }

    /// Builds a model from an architecture and float32 weights by full name ("encoder.weight_ih_l0"),
    /// with the same checks as a file (training uses this).
    public convenience init(architecture: Architecture, weights: [String: Tensor], registry: LayerRegistry = .shared) throws(RecurError) {
        try self.init(architecture: architecture, registry: registry, tensorNames: Set(weights.keys)) { name, shape throws(RecurError) in
            guard let tensor = weights[name] else { throw RecurError.format("missing tensor \(name) with shape \(shape)") }
            guard tensor.shape == shape else { throw RecurError.format("tensor \(name): expected shape \(shape), found \(tensor.shape)") }
            guard tensor.floats != nil else { throw RecurError.format("tensor \(name): weights must be float32") }
        } decode: { name, elements throws(RecurError) in
            guard let floats = weights[name]?.floats else { throw RecurError(.internal, "tensor \(name) was checked but is gone") }
            return LayerWeights.elements(elements, of: floats)
        }
    }

    /// `check` refuses a parameter (full name, declared shape) that is missing or unusable; `decode`
    /// reads a checked one when its layer takes it.
    private init(architecture: Architecture, registry: LayerRegistry, tensorNames: Set<String>,
                 check: (String, [Int]) throws(RecurError) -> Void,
                 storedPrecision: @escaping (String) -> LayerWeights.StoredPrecision = { _ in .float32 },
                 decodeHalfBits: @escaping (String, Range<Int>) throws(RecurError) -> [UInt16] = LayerWeights.noHalfBits,
                 decode: @escaping (String, Range<Int>?) throws(RecurError) -> [Float]) throws(RecurError) {
        var used = Set<String>()
        var layers: [any Layer] = []
        var shape: SignalShape
        switch architecture.input {
        case .tokens(let v): shape = .tokens(vocabulary: v)
        case .features(let s): shape = .sequence(features: s)
        }
        var shapeContext = ShapeContext()
        var parameterCount = 0
        var widest = 1
        for config in architecture.layers {
            guard let kind = registry.kind(named: config.type) else {
                throw RecurError.format("layer '\(config.name)': unknown type '\(config.type)'; known types: \(registry.typeNames.joined(separator: ", "))")
            }
            let declarations = try kind.parameters(config)
            for declaration in declarations {
                let name = "\(config.name).\(declaration.suffix)"
                guard let count = Tensor.elementCount(declaration.shape) else {
                    throw RecurError.format("layer '\(config.name)': parameter \(name) has an impossible shape \(declaration.shape)")
                }
                try check(name, declaration.shape)
                used.insert(name)
                parameterCount += count
            }
            let weights = LayerWeights(suffixes: declarations.map(\.suffix)) { suffix in
                storedPrecision("\(config.name).\(suffix)")
            } decodeHalfBits: { suffix, elements throws(RecurError) in
                try decodeHalfBits("\(config.name).\(suffix)", elements)
            } decode: { suffix, elements throws(RecurError) in
                try decode("\(config.name).\(suffix)", elements)
            }
            let layer = try kind.makeLayer(config, loading: weights)
            shape = try layer.outputShape(for: shape, context: &shapeContext)
            if case .sequence(let f) = shape { widest = max(widest, f) }
            if case .pooled(let f) = shape { widest = max(widest, f) }
            layers.append(layer)
        }
        if let extra = tensorNames.subtracting(used).sorted().first {
            throw RecurError.format("tensor \(extra) is not used by any layer (known layers: \(architecture.layers.map(\.name).joined(separator: ", ")))")
        }
        self.architecture = architecture
        self.layers = layers
        self.outputShape = shape
        self.parameterCount = parameterCount
        // Names built once here: a run checks its inputs against them and a session carries its
        // states by them on every call.
        let states = layers.flatMap { layer in layer.states.map { (stateTensorNames(layer: layer.name, state: $0.name), $0) } }
        stateInputs = states.map { names, state in (names.initial, state.rows, state.width) }
        outputNames = ["output"] + states.map { names, _ in names.final }
        if case .features(let size) = architecture.input { widest = max(widest, size) }
        self.widestStep = widest.multipliedReportingOverflow(by: 4).overflow ? Int.max : widest * 4
        if let configuration = architecture.tokenizer, let vocabulary = architecture.vocabulary {
            if case .tokens(let size) = architecture.input {
                guard vocabulary.count <= size, configuration.unknownID < size else {
                    throw RecurError.format("architecture: vocab has \(vocabulary.count) entries and tokenizer.unk_id is \(configuration.unknownID); both must fit input.vocab_size \(size)")
                }
            }
            tokenizer = Tokenizer(configuration, vocabulary: vocabulary)
        } else {
            tokenizer = nil
        }
    }

    /// The most elements one tensor or buffer of a run may have; larger requests are refused with
    /// `outOfMemory` before anything is allocated. Callers that copy inputs check against it first.
    public static var maxElementsPerBuffer: Int { RunRequest.maxElements }

    /// False when a layer needs whole sequences (a bidirectional layer): such a model cannot stream.
    public var canStream: Bool { layers.allSatisfy(\.canStream) }

    /// Runs whole sequences.
    ///
    /// - Parameter inputs: `input` (float32 [B, T, size], or int32/int64 token ids [B, T]); optional
    ///   `lengths` (int32/int64 [B], each in 1 … T); optional initial states `L.h0`, `L.c0`
    ///   (float32 [num_layers·D, B, H]).
    /// - Returns: `output` ([B, T, F] per step or [B, F] pooled), then `L.h_n` (and `L.c_n`) per
    ///   recurrent layer, each taken at the sequence's own last valid step.
    public func run(_ inputs: [String: Tensor]) throws(RecurError) -> [NamedTensor] {
        let request = try RunRequest(model: self, inputs: inputs)
        return try run(request)
    }

    func run(_ request: RunRequest) throws(RecurError) -> [NamedTensor] {
        var context = ForwardContext(lengths: request.lengths, initialStates: request.states)
        let signal = try forward(request, through: layers[...], context: &context)
        let output: Tensor
        switch signal {
        case .sequence(let v, let b, let t, let f): output = Tensor(floats: v, shape: [b, t, f])
        case .pooled(let v, let b, let f): output = Tensor(floats: v, shape: [b, f])
        case .tokens(let ids, let b, let t): output = Tensor(unchecked: .int32(ids), shape: [b, t])
        }
        return [NamedTensor(name: "output", tensor: output)] + context.finalStates
    }

    /// The outputs `run(request)` returns, in its order, without their values: names, element types
    /// and shapes.
    package func outputLayout(_ request: RunRequest) -> [(name: String, dtype: DType, shape: [Int])] {
        let (batch, steps) = (request.batch, request.steps)
        let output: (String, DType, [Int])
        switch outputShape {
        case .sequence(let features): output = ("output", .float32, [batch, steps, features])
        case .pooled(let features): output = ("output", .float32, [batch, features])
        case .tokens: output = ("output", .int32, [batch, steps])
        }
        return [output] + zip(outputNames.dropFirst(), stateInputs).map { name, state in
            (name, DType.float32, [state.rows, batch, state.width])
        }
    }

    /// `run` for a caller that has room for "output" (outputLayout's first entry): its values are
    /// written into `output`, by the last layer itself when that is a recurrent layer, which saves a
    /// copy of [B, T, F] floats. Returns the other outputs, the final states.
    package func run(_ request: RunRequest, outputInto output: UnsafeMutableRawBufferPointer) throws(RecurError) -> [NamedTensor] {
        var context = ForwardContext(lengths: request.lengths, initialStates: request.states)
        if let last = layers.last as? RecurrentLayer {
            let floats = output.bindMemory(to: Float.self)
            if layers.count == 1, case .borrowed(let x, let batch, let steps, _) = request.input {
                try last.forward(x, batch: batch, steps: steps, context: &context, into: floats)
            } else {
                guard case .sequence(let x, let batch, let steps, _) = try forward(request, through: layers.dropLast(), context: &context) else {
                    throw RecurError(.internal, "layer '\(last.name)' was given a signal that shape checking refuses")
                }
                try x.withUnsafeBufferPointer { x throws(RecurError) in
                    try last.forward(x, batch: batch, steps: steps, context: &context, into: floats)
                }
            }
            return context.finalStates
        }
        func fill<Element: BitwiseCopyable>(_ values: [Element]) throws(RecurError) {
            let bytes = values.count * MemoryLayout<Element>.stride
            guard bytes == output.count else { throw RecurError(.internal, "room for \(output.count) output bytes, not \(bytes)") }
            values.withUnsafeBytes { copyBytes($0, to: output) }
        }
        switch try forward(request, through: layers[...], context: &context) {
        case .sequence(let v, _, _, _), .pooled(let v, _, _): try fill(v)
        case .tokens(let ids, _, _): try fill(ids)
        }
        return context.finalStates
    }

    /// The signal `layers` make of the request's input, each per-step output zero past a sequence's
    /// length. A borrowed input is read in place by a first recurrent layer, and copied for any other.
    private func forward(_ request: RunRequest, through layers: ArraySlice<any Layer>, context: inout ForwardContext) throws(RecurError) -> Signal {
        var layers = layers
        var signal: Signal
        switch request.input {
        case .signal(let given): signal = given
        case .borrowed(let x, let batch, let steps, let features):
            if let first = layers.first as? RecurrentLayer {
                signal = try first.forward(x, batch: batch, steps: steps, context: &context)
                layers = layers.dropFirst()
            } else {
                signal = .sequence(Array(x), batch: batch, steps: steps, features: features)
            }
        }
        for layer in layers {
            signal = try layer.forward(signal, context: &context)
            if let lengths = request.lengths, case .sequence(var values, let batch, let steps, let features) = signal {
                zeroPadding(&values, lengths: lengths, steps: steps, features: features)
                signal = .sequence(values, batch: batch, steps: steps, features: features)
            }
        }
        return signal
    }
}

/// Installed memory in bytes (Int.max when the system does not say).
private let physicalMemoryBytes: Int = {
    let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
    guard pages > 0, pageSize > 0 else { return Int.max }
    let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
    return overflow ? Int.max : bytes
}()

/// Sets every per-step vector at or past its sequence's length to zero. values: [B, T, F].
func zeroPadding(_ values: inout [Float], lengths: [Int], steps: Int, features: Int) {
    values.withUnsafeMutableBufferPointer { v in
        for (b, length) in lengths.enumerated() where length < steps {
            let start = (b * steps + length) * features
            (v.baseAddress! + start).update(repeating: 0, count: (steps - length) * features)
        }
    }
}

/// Float32 features [B, T, F] in a caller's memory, which a run reads in place rather than copying:
/// valid, and unchanged, until the run returns.
package struct BorrowedFeatures {
    package let values: UnsafeBufferPointer<Float>
    package let shape: [Int]

    /// `values` must hold the product of `shape`.
    package init(_ values: UnsafeBufferPointer<Float>, shape: [Int]) {
        self.values = values
        self.shape = shape
    }
}

/// The inputs of one `run`, checked against the model.
package struct RunRequest {
    /// The input as the first layer takes it.
    enum Input {
        case signal(Signal)
        /// [B, T, F], read in place.
        case borrowed(UnsafeBufferPointer<Float>, batch: Int, steps: Int, features: Int)
    }

    let input: Input
    package let batch: Int
    package let steps: Int
    let lengths: [Int]?
    let states: [String: [Float]]

    /// Upper bound on the elements of any one buffer a run may allocate: 2³⁴ floats (64 GiB), and
    /// at most a quarter of physical memory, because a Swift allocation that fails traps.
    static let maxElements = min(1 << 34, physicalMemoryBytes / (4 * MemoryLayout<Float>.size))

    /// `borrowed`, when given, is the input ("input" is then not in `inputs`).
    package init(model: Model, inputs: [String: Tensor], borrowed: BorrowedFeatures? = nil) throws(RecurError) {
        func accepted(_ name: String) -> Bool {
            name == "input" || name == "lengths" || model.stateInputs.contains { $0.name == name }
        }
        if !inputs.keys.allSatisfy(accepted), let unknown = inputs.keys.sorted().first(where: { !accepted($0) }) {
            let names = (["input", "lengths"] + model.stateInputs.map(\.name)).sorted()
            throw RecurError.invalidInput("unknown input '\(unknown)'; the model takes \(names.joined(separator: ", "))")
        }
        let given = inputs["input"]
        guard let (shape, dtype) = borrowed.map({ ($0.shape, DType.float32) }) ?? given.map({ ($0.shape, $0.dtype) }) else {
            throw RecurError.invalidInput("missing tensor 'input'")
        }
        switch model.architecture.input {
        case .tokens(let vocabularySize):
            guard shape.count == 2, let ids = given?.integers else {
                throw RecurError.invalidInput("input must be int32 or int64 token ids [B, T], found \(dtype.rawValue) \(shape)")
            }
            (batch, steps) = (shape[0], shape[1])
            if let bad = ids.firstIndex(where: { $0 < 0 || $0 >= Int64(vocabularySize) }) {
                throw RecurError.invalidInput("input[\(bad / max(steps, 1)), \(bad % max(steps, 1))] is token id \(ids[bad]), outside the vocabulary [0, \(vocabularySize))")
            }
            input = .signal(.tokens(ids.map { Int32(truncatingIfNeeded: $0) }, batch: batch, steps: steps))
        case .features(let size):
            guard shape.count == 3, shape[2] == size, dtype == .float32 else {
                throw RecurError.invalidInput("input must be float32 [B, T, \(size)], found \(dtype.rawValue) \(shape)")
            }
            (batch, steps) = (shape[0], shape[1])
            if let borrowed {
                input = .borrowed(borrowed.values, batch: batch, steps: steps, features: size)
            } else {
                input = .signal(.sequence(given?.floats ?? [], batch: batch, steps: steps, features: size))
            }
        }
        guard batch >= 1, steps >= 1 else {
            throw RecurError.invalidInput("input shape \(shape): batch and steps must be at least 1")
        }
        // Every buffer a run allocates is at most B·T·(widest step); refuse before allocating.
        guard let elements = Tensor.elementCount([batch, steps, model.widestStep]), elements <= RunRequest.maxElements else {
            throw RecurError(.outOfMemory, "input shape \(shape) would need buffers of over \(RunRequest.maxElements) floats")
        }
        if let lengthTensor = inputs["lengths"] {
            guard lengthTensor.shape == [batch], let values = lengthTensor.integers else {
                throw RecurError.invalidInput("lengths must be int32 or int64 [\(batch)], found \(lengthTensor.dtype.rawValue) \(lengthTensor.shape)")
            }
            let steps = self.steps
            if let bad = values.firstIndex(where: { $0 < 1 || $0 > Int64(steps) }) {
                throw RecurError.invalidInput("lengths[\(bad)] is \(values[bad]), outside 1 … \(steps) (T)")
            }
            lengths = values.map { Int($0) }
        } else {
            lengths = nil
        }
        var states: [String: [Float]] = [:]
        for (name, rows, width) in model.stateInputs {
            // Final states are [num_layers·D, B, H] whether or not initial ones are given: a deep
            // stack times a large batch can outgrow every per-step buffer.
            guard let elements = Tensor.elementCount([rows, batch, width]), elements <= RunRequest.maxElements else {
                throw RecurError(.outOfMemory, "batch \(batch) would need a state \(name) of [\(rows), \(batch), \(width)], over \(RunRequest.maxElements) floats")
            }
            guard let tensor = inputs[name] else { continue }
            guard tensor.shape == [rows, batch, width], let values = tensor.floats else {
                throw RecurError.invalidInput("\(name) must be float32 [\(rows), \(batch), \(width)], found \(tensor.dtype.rawValue) \(tensor.shape)")
            }
            states[name] = values
        }
        self.states = states
    }
}

/// Open while a model loads from a file or image: its tensors are decoded only then.
private final class LoadWindow: Sendable {
    private let isOpen = Atomic(true)

    func close() { isOpen.store(false, ordering: .releasing) }

    func check(_ tensor: String) throws(RecurError) {
        guard isOpen.load(ordering: .acquiring) else {
            throw RecurError(.internal, "tensor \(tensor) was taken after its model was loaded")
        }
    }
}
