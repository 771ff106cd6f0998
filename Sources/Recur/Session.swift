/// One stream over a model: recurrent state carried from chunk to chunk, so feeding T1 steps, then
/// T2, … gives the same per-step outputs and final states as one run over T1+T2+… steps.
/// A value type: a session is used from one thread at a time; copies are independent streams.
public struct Session: Sendable {
    public let model: Model
    /// The next chunk's initial states ("L.h0"), [rows, B, H]; empty before the first step.
    public private(set) var states: [String: Tensor] = [:]
    /// The batch size the held state is for; nil before the first step and after `reset`.
    public private(set) var batch: Int?

    /// Opens a session; a model with a bidirectional layer cannot stream (`unsupported`).
    public init(model: Model) throws(RecurError) {
        guard model.canStream else {
            let layer = model.layers.first { !$0.canStream }?.name ?? "?"
            throw RecurError.unsupported("model cannot stream: layer '\(layer)' is bidirectional and needs the whole sequence")
        }
        self.model = model
    }

    /// Runs the next chunk. `inputs` holds `input` only ([B, T, size] or token ids [B, T]); sessions
    /// take no lengths. Returns what `Model.run` returns for the chunk.
    public mutating func step(_ inputs: [String: Tensor]) throws(RecurError) -> [NamedTensor] {
        let outputs = try model.run(try runInputs(forStep: inputs))
        carry(outputs)
        return outputs
    }

    /// The inputs of `Model.run` for a step: `input` plus the held states; refuses anything but
    /// `input` and a batch other than the held state's. (Batching merges these across sessions.)
    func runInputs(forStep inputs: [String: Tensor]) throws(RecurError) -> [String: Tensor] {
        if let other = inputs.keys.sorted().first(where: { $0 != "input" }) {
            throw RecurError.invalidInput("a session step takes only 'input', found '\(other)'")
        }
        guard let input = inputs["input"] else { throw RecurError.invalidInput("missing tensor 'input'") }
        guard let chunkBatch = input.shape.first else {
            throw RecurError.invalidInput("input must be [B, T, …], found a scalar (rank 0)")
        }
        if let batch, batch != chunkBatch {
            throw RecurError.invalidInput("input has batch \(chunkBatch), but the session holds state for batch \(batch); reset it first")
        }
        var all = states
        all["input"] = input
        return all
    }

    /// Keeps a step's final states ("L.h_n") as the next step's initial states ("L.h0").
    mutating func carry(_ outputs: [NamedTensor]) {
        // outputNames lists the final states in stateInputs' order, after "output".
        for (state, finalName) in zip(model.stateInputs, model.outputNames.dropFirst()) {
            if let final = outputs.first(where: { $0.name == finalName }) { states[state.name] = final.tensor }
        }
        batch = outputs.first?.tensor.shape.first
    }

    /// Forgets the carried state: the next step starts from zeros.
    public mutating func reset() {
        states = [:]
        batch = nil
    }
}
