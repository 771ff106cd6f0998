/// Dynamic batching: several independent requests over one model computed as one padded batch,
/// with results identical to running them one by one.
///
/// Why the results are identical: the requests' sequences become rows of one batch [ΣB, max T, …]
/// with `lengths` giving each row its own length, so steps past a row's length are padding that
/// never touches its state and whose per-step outputs are zero; pooling and final states honour
/// lengths; and the kernels compute every row independently of the others (recur_kernels.h). Each
/// request then gets back its own rows, cut to its own T.
public enum Batching {
    /// Runs every entry of `requests` as `model.run` would, the valid ones as one batch.
    ///
    /// - Parameter requests: inputs as `Model.run` takes them (`input` [B_i, T_i, …], optional
    ///   `lengths` [B_i], optional `L.h0`/`L.c0` [rows, B_i, H]); token ids may mix int32 and int64,
    ///   some requests may give initial states and others not (absent states are zeros).
    /// - Returns: one result per request, in order; a request whose inputs do not fit the model
    ///   gets its own error and does not affect the others.
    public static func run(_ model: Model, _ requests: [[String: Tensor]]) -> [Result<[NamedTensor], RecurError>] {
        var results = [Result<[NamedTensor], RecurError>?](repeating: nil, count: requests.count)
        var valid: [Int] = []
        for (i, inputs) in requests.enumerated() {
            do throws(RecurError) {
                _ = try RunRequest(model: model, inputs: inputs)
                valid.append(i)
            } catch {
                results[i] = .failure(error)
            }
        }
        for (i, outputs) in zip(valid, runValid(model, valid.map { requests[$0] })) { results[i] = outputs }
        return results.map { $0 ?? .failure(RecurError(.internal, "batching lost a request")) }
    }

    /// Steps every session with its chunk as `Session.step` would, the valid steps over one model
    /// as one batch (sessions are grouped by the model they were opened on).
    ///
    /// - Parameters:
    ///   - sessions: the streams to advance; each valid step updates its session's state.
    ///   - inputs: one chunk per session, `input` only ([B_i, T_i, …] or token ids [B_i, T_i]).
    /// - Returns: one result per session, in order; a failed step leaves its session unchanged.
    public static func step(_ sessions: inout [Session], _ inputs: [[String: Tensor]]) -> [Result<[NamedTensor], RecurError>] {
        var results = [Result<[NamedTensor], RecurError>?](repeating: nil, count: sessions.count)
        guard sessions.count == inputs.count else {
            let error = RecurError(.invalidArgument, "\(sessions.count) sessions but \(inputs.count) inputs")
            return sessions.map { _ in .failure(error) }
        }
        var groups: [ObjectIdentifier: [(index: Int, inputs: [String: Tensor])]] = [:]
        var order: [ObjectIdentifier] = []
        for (i, session) in sessions.enumerated() {
            do throws(RecurError) {
                let runInputs = try session.runInputs(forStep: inputs[i])
                _ = try RunRequest(model: session.model, inputs: runInputs)
                let key = ObjectIdentifier(session.model)
                if groups[key] == nil { order.append(key) }
                groups[key, default: []].append((i, runInputs))
            } catch {
                results[i] = .failure(error)
            }
        }
        for key in order {
            let members = groups[key] ?? []
            guard let model = members.first.map({ sessions[$0.index].model }) else { continue }
            for (member, outputs) in zip(members, runValid(model, members.map(\.inputs))) {
                if case .success(let values) = outputs { sessions[member.index].carry(values) }
                results[member.index] = outputs
            }
        }
        return results.map { $0 ?? .failure(RecurError(.internal, "batching lost a request")) }
    }

    /// Runs requests already checked against `model`: one merged run, or, should the merged run
    /// fail (it may be larger than any single request), each request on its own.
    private static func runValid(_ model: Model, _ requests: [[String: Tensor]]) -> [Result<[NamedTensor], RecurError>] {
        if requests.count > 1 {
            do throws(RecurError) {
                return try runMerged(model, requests).map { .success($0) }
            } catch {
                // Fall through: every request is answered on its own, with its own error if any.
            }
        }
        return requests.map { inputs in
            do throws(RecurError) { return .success(try model.run(inputs)) } catch { return .failure(error) }
        }
    }

    /// Where one request's sequences sit in the merged batch.
    private struct Placement {
        let firstRow: Int
        let rows: Int
        let steps: Int
    }

    private static func runMerged(_ model: Model, _ requests: [[String: Tensor]]) throws(RecurError) -> [[NamedTensor]] {
        var placements: [Placement] = []
        var totalRows = 0
        for inputs in requests {
            guard let input = inputs["input"], input.shape.count >= 2 else {
                throw RecurError(.internal, "batching: a checked request has no [B, T] input")
            }
            placements.append(Placement(firstRow: totalRows, rows: input.shape[0], steps: input.shape[1]))
            totalRows = totalRows.addingReportingOverflow(input.shape[0]).overflow ? Int.max : totalRows + input.shape[0]
        }
        let steps = placements.map(\.steps).max() ?? 1
        // Padding to the longest T can make the merge far larger than its requests together (many
        // short rows beside one long one): check it as a run would, before allocating it.
        guard let elements = Tensor.elementCount([totalRows, steps, model.widestStep]), elements <= RunRequest.maxElements else {
            throw RecurError(.outOfMemory, "batching: the merged batch of \(totalRows) sequences of \(steps) steps is too large")
        }
        var merged: [String: Tensor] = [:]

        // input: [B, T] token ids or [B, T, F] features, zero beyond each request's own T.
        if case .tokens = model.architecture.input {
            let parts = requests.map { $0["input"]?.integers ?? [] }
            merged["input"] = try .int64(pad(parts, placements, outer: 1, rows: totalRows, steps: steps, inner: 1),
                                         shape: [totalRows, steps])
        } else {
            let features = requests.first?["input"]?.shape.last ?? 0
            let parts = requests.map { $0["input"]?.floats ?? [] }
            merged["input"] = try .float32(pad(parts, placements, outer: 1, rows: totalRows, steps: steps, inner: features),
                                           shape: [totalRows, steps, features])
        }

        // lengths: each request's own, or its T; needed as soon as one request is shorter than T.
        let needsLengths = zip(requests, placements).contains { $0["lengths"] != nil || $1.steps < steps }
        if needsLengths {
            var lengths: [Int64] = []
            lengths.reserveCapacity(totalRows)
            for (inputs, placement) in zip(requests, placements) {
                lengths += inputs["lengths"]?.integers ?? Array(repeating: Int64(placement.steps), count: placement.rows)
            }
            merged["lengths"] = try .int64(lengths, shape: [totalRows])
        }

        // Initial states [rows, B, H]: a request without one starts from zeros, as it would alone.
        for (name, stateRows, width) in model.stateInputs where requests.contains(where: { $0[name] != nil }) {
            let parts = zip(requests, placements).map { inputs, placement in
                inputs[name]?.floats ?? [Float](repeating: 0, count: stateRows * placement.rows * width)
            }
            let unitSteps = placements.map { Placement(firstRow: $0.firstRow, rows: $0.rows, steps: 1) }
            merged[name] = try .float32(pad(parts, unitSteps, outer: stateRows, rows: totalRows, steps: 1, inner: width),
                                        shape: [stateRows, totalRows, width])
        }

        let outputs = try model.run(merged)
        let parts = try placements.map { placement throws(RecurError) in
            try outputs.map { output throws(RecurError) in
                NamedTensor(name: output.name, tensor: try slice(output, of: model, placement, batch: totalRows, steps: steps))
            }
        }
        // The merged outputs were copied into the parts: their buffers serve the next merged batch.
        for output in outputs { ReusedFloats.give(output.tensor) }
        return parts
    }

    /// One request's part of a merged output: its rows, and for per-step outputs its own T.
    private static func slice(_ output: NamedTensor, of model: Model, _ placement: Placement,
                              batch: Int, steps: Int) throws(RecurError) -> Tensor {
        let shape = output.tensor.shape
        // Layout as [outer, B, steps, inner] of the merged tensor, and the part's shape.
        let layout: (outer: Int, steps: Int, keep: Int, inner: Int, shape: [Int])
        if output.name == "output" {
            switch model.outputShape {
            case .sequence(let f): layout = (1, steps, placement.steps, f, [placement.rows, placement.steps, f])
            case .pooled(let f): layout = (1, 1, 1, f, [placement.rows, f])
            case .tokens: layout = (1, steps, placement.steps, 1, [placement.rows, placement.steps])
            }
        } else {
            guard shape.count == 3 else {
                throw RecurError(.internal, "batching: state \(output.name) has shape \(shape), expected [rows, B, H]")
            }
            layout = (shape[0], 1, 1, shape[2], [shape[0], placement.rows, shape[2]])
        }
        guard Tensor.elementCount(shape) == Tensor.elementCount([layout.outer, batch, layout.steps, layout.inner]) else {
            throw RecurError(.internal, "batching: output \(output.name) has shape \(shape), which does not fit the merged batch")
        }
        func cut<E>(_ values: [E]) -> [E] {
            var out: [E] = []
            out.reserveCapacity(layout.outer * placement.rows * layout.keep * layout.inner)
            for o in 0..<layout.outer {
                for r in placement.firstRow..<(placement.firstRow + placement.rows) {
                    let start = ((o * batch + r) * layout.steps) * layout.inner
                    out += values[start..<(start + layout.keep * layout.inner)]
                }
            }
            return out
        }
        switch output.tensor.storage {
        case .float32(let v): return try .float32(cut(v), shape: layout.shape)
        case .int32(let v): return try .int32(cut(v), shape: layout.shape)
        case .int64(let v): return try .int64(cut(v), shape: layout.shape)
        }
    }

    /// Places each part, viewed as [outer, rows_i, steps_i, inner], into a zero tensor
    /// [outer, rows, steps, inner] at its rows.
    private static func pad<E: Numeric>(_ parts: [[E]], _ placements: [Placement],
                                        outer: Int, rows: Int, steps: Int, inner: Int) throws(RecurError) -> [E] {
        guard let count = Tensor.elementCount([outer, rows, steps, inner]) else {
            throw RecurError(.outOfMemory, "batching: merged batch [\(outer), \(rows), \(steps), \(inner)] is too large")
        }
        var out = [E](repeating: 0, count: count)
        for (part, placement) in zip(parts, placements) {
            let span = placement.steps * inner
            guard part.count == outer * placement.rows * span else {
                throw RecurError(.internal, "batching: a part has \(part.count) values, expected \(outer * placement.rows * span)")
            }
            for o in 0..<outer {
                for r in 0..<placement.rows {
                    let source = (o * placement.rows + r) * span
                    let target = ((o * rows + placement.firstRow + r) * steps) * inner
                    out.replaceSubrange(target..<(target + span), with: part[source..<(source + span)])
                }
            }
        }
        return out
    }
}
