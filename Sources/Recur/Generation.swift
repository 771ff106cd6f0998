#if canImport(Glibc)
import Glibc
#endif

/// How `Model.generate` picks each next token (model-format.md, Generation).
public struct SamplingOptions: Sendable, Equatable {
    /// 0 = greedy arg-max; otherwise logits are divided by it.
    public var temperature: Float
    /// Keep only the k most likely tokens; 0 = off.
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches p; 1 = off.
    public var topP: Float
    /// Same seed, model and prompt → same tokens.
    public var seed: UInt64

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    func validate() throws(RecurError) {
        guard temperature.isFinite, temperature >= 0 else {
            throw RecurError(.invalidArgument, "temperature must be a finite number ≥ 0, found \(temperature)")
        }
        guard topK >= 0 else { throw RecurError(.invalidArgument, "top_k must be ≥ 0, found \(topK)") }
        guard topP.isFinite, topP > 0, topP <= 1 else {
            throw RecurError(.invalidArgument, "top_p must be in (0, 1], found \(topP)")
        }
    }
}

extension Model {
    /// True for a token model whose output is per step over its vocabulary ([B, T, vocab_size]).
    public var canGenerate: Bool {
        guard case .tokens(let v) = architecture.input, case .sequence(let f) = outputShape else { return false }
        return f == v && canStream
    }

    /// Feeds `prompt`, then repeatedly samples the next token and feeds it back. Stops after
    /// `maxTokens` tokens or at a token in `stop`, which is not returned.
    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingOptions = SamplingOptions(),
                         stop: Set<Int> = []) throws(RecurError) -> [Int] {
        guard canGenerate, case .tokens(let vocabulary) = architecture.input else {
            throw RecurError.unsupported("model cannot generate: it needs token input and a per-step output over its vocabulary, and must be able to stream")
        }
        try sampling.validate()
        guard !prompt.isEmpty else { throw RecurError.invalidInput("prompt is empty") }
        guard maxTokens >= 0 else { throw RecurError(.invalidArgument, "max_tokens must be ≥ 0, found \(maxTokens)") }
        if let bad = prompt.firstIndex(where: { $0 < 0 || $0 >= vocabulary }) {
            throw RecurError.invalidInput("prompt[\(bad)] is token id \(prompt[bad]), outside the vocabulary [0, \(vocabulary))")
        }
        let meaning = OutputMeaning(lastLayer: layers.last)
        var session = try Session(model: self)
        var generator = SplitMix64(seed: sampling.seed)
        var tokens: [Int] = []
        var chunk = prompt
        while tokens.count < maxTokens {
            let outputs = try session.step(["input": try Tensor.int64(chunk.map(Int64.init), shape: [1, chunk.count])])
            guard let logits = outputs.first?.tensor.floats?.suffix(vocabulary) else {
                throw RecurError(.internal, "generation: model output is not float32")
            }
            let next = sample(scores: meaning.logits(Array(logits)), sampling, &generator)
            if stop.contains(next) { break }
            tokens.append(next)
            chunk = [next]
        }
        return tokens
    }
}

/// What the last layer's numbers are, so sampling can work from logits.
enum OutputMeaning {
    case probabilities, logProbabilities, logits

    init(lastLayer: (any Layer)?) {
        switch (lastLayer as? ElementwiseLayer)?.function {
        case .softmax: self = .probabilities
        case .log_softmax: self = .logProbabilities
        default: self = .logits
        }
    }

    func logits(_ values: [Float]) -> [Float] {
        switch self {
        case .probabilities: values.map { $0 > 0 ? logf($0) : -.infinity }
        case .logProbabilities, .logits: values
        }
    }
}

/// Picks a token from logits: greedy at temperature 0 (lowest id on ties), else softmax of
/// logits / temperature restricted by top-k then top-p, sampled with `generator`.
func sample(scores logits: [Float], _ options: SamplingOptions, _ generator: inout SplitMix64) -> Int {
    let finite = logits.map { $0.isNaN ? -Float.infinity : $0 }
    var best = 0
    for i in finite.indices where finite[i] > finite[best] { best = i }
    guard options.temperature > 0 else { return best }
    // Candidates by decreasing logit; ties keep id order so results do not depend on the sort.
    var order = finite.indices.sorted { finite[$0] != finite[$1] ? finite[$0] > finite[$1] : $0 < $1 }
    if options.topK > 0 && options.topK < order.count { order.removeSubrange(options.topK...) }
    let top = Double(finite[order[0]])
    var weights = order.map { exp((Double(finite[$0]) - top) / Double(options.temperature)) }
    let total = weights.reduce(0, +)
    if options.topP < 1 {
        var cumulative = 0.0
        var keep = weights.count
        for (i, w) in weights.enumerated() {
            cumulative += w / total
            if cumulative >= Double(options.topP) { keep = i + 1; break }
        }
        order.removeSubrange(keep...)
        weights.removeSubrange(keep...)
    }
    let threshold = generator.nextUnit() * weights.reduce(0, +)
    var running = 0.0
    for (token, w) in zip(order, weights) {
        running += w
        if threshold < running { return token }
    }
    return order.last ?? best
}

/// SplitMix64: a small, fast generator whose sequence is fixed by its seed on every platform.
/// Shared with training (initialisation, shuffling, dropout), hence `package`.
package struct SplitMix64: Sendable {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    package mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
