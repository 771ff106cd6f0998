import CRecurPlugin

/// A layer type from a plugin's table (Include/recur_plugin.h): the plugin declares the layer from
/// its config and computes it; loading, shape checks, lengths, directions and states are the
/// engine's, as for built-in types.
struct PluginLayerKind: LayerKind {
    typealias Create = @convention(c) (UnsafeMutablePointer<recur_layer_builder>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                       UnsafeMutablePointer<CChar>?, Int) -> recur_plugin_status
    typealias Destroy = @convention(c) (UnsafeMutableRawPointer?) -> Void
    typealias Forward = @convention(c) (UnsafeRawPointer?, UnsafePointer<recur_forward_args>?, UnsafeMutablePointer<CChar>?, Int) -> recur_plugin_status
    typealias Step = @convention(c) (UnsafeRawPointer?, UnsafePointer<recur_step_args>?, UnsafeMutablePointer<CChar>?, Int) -> recur_plugin_status

    /// What computes the layer: `forward` over whole sequences, or a recurrent `step`.
    enum Body {
        case perStep(Forward)
        case recurrent(Step)
    }

    let typeName: String
    let pluginName: String
    let create: Create
    let destroy: Destroy?
    let body: Body

    var isRecurrent: Bool {
        if case .recurrent = body { return true }
        return false
    }

    /// Asks the plugin to declare the layer; the declaration and the plugin's per-layer object.
    func declare(_ config: LayerConfig) throws(RecurError) -> (PluginLayerDeclaration, PluginLayerObject) {
        let builder = PluginLayerBuilder(config: config, recurrent: isRecurrent)
        var message = [CChar](repeating: 0, count: pluginErrorCapacity)
        var layer: UnsafeMutableRawPointer?
        let status = builder.withCBuilder { create($0, &layer, &message, message.count) }
        guard status == RECUR_PLUGIN_OK else {
            // The builder's own message (a config key of the wrong type) when the plugin gave none.
            let reason = pluginMessage(message)
            if reason.isEmpty, let failure = builder.failure { throw RecurError(failure.kind, "plugin '\(pluginName)': \(failure.message)") }
            throw pluginError(status, reason.isEmpty ? "create failed with status \(status)" : reason, layer: config.name)
        }
        let object = PluginLayerObject(layer, destroy: destroy)
        do throws(RecurError) {
            // A declaration the builder refused is missing from the layer, whatever create returned.
            if let failure = builder.failure { throw failure }
            let bidirectional = isRecurrent ? try config.boolean("bidirectional", default: false) : false
            return (try builder.declaration(directions: bidirectional ? 2 : 1), object)
        } catch {
            throw RecurError(error.kind, "plugin '\(pluginName)': \(error.message)")
        }
    }

    /// A plugin's failure as an engine error naming the plugin, the layer and its type.
    func pluginError(_ status: recur_plugin_status, _ reason: String, layer: String) -> RecurError {
        let kind: RecurError.Kind = switch status {
        case RECUR_PLUGIN_ERR_CONFIG: .format
        case RECUR_PLUGIN_ERR_INPUT: .invalidInput
        case RECUR_PLUGIN_ERR_OUT_OF_MEMORY: .outOfMemory
        default: .internal
        }
        return RecurError(kind, "plugin '\(pluginName)': layer '\(layer)' (\(typeName)): \(reason)")
    }

    func parameters(_ config: LayerConfig) throws(RecurError) -> [ParameterDeclaration] {
        try declare(config).0.parameters
    }

    func makeLayer(_ config: LayerConfig, weights: [String: [Float]]) throws(RecurError) -> any Layer {
        let (declaration, object) = try declare(config)
        var values: [Float] = []
        var offsets: [[Int]] = []
        for direction in declaration.parametersByDirection {
            offsets.append(direction.map { parameter in
                defer { values += weights[parameter.suffix] ?? [] }
                return values.count
            })
        }
        return PluginLayer(name: config.name, kind: self, declaration: declaration, object: object,
                           parameterValues: values, parameterOffsets: offsets)
    }
}

/// What a plugin declared for one layer.
struct PluginLayerDeclaration: Sendable {
    let inputFeatures: Int
    /// One direction's output features.
    let outputFeatures: Int
    /// Per direction (forward, then "_reverse"), in the plugin's declaration order.
    let parametersByDirection: [[ParameterDeclaration]]
    /// [(name, width)]; empty for per-step layers.
    let states: [(name: String, width: Int)]
    /// Scratch floats per sequence.
    let workspace: Int

    var directions: Int { parametersByDirection.count }
    var parameters: [ParameterDeclaration] { parametersByDirection.flatMap { $0 } }
}

/// The object a plugin's `create` made for one layer, destroyed with the last layer value that
/// holds it. The plugin ABI makes it read-only and safe to use from any number of threads at
/// once, so its address is kept as a plain number and shared.
final class PluginLayerObject: Sendable {
    private let address: UInt
    private let destroy: PluginLayerKind.Destroy?

    init(_ pointer: UnsafeMutableRawPointer?, destroy: PluginLayerKind.Destroy?) {
        address = UInt(bitPattern: pointer)
        self.destroy = destroy
    }

    var pointer: UnsafeRawPointer? { UnsafeRawPointer(bitPattern: address) }

    deinit {
        if let destroy, let object = UnsafeMutableRawPointer(bitPattern: address) { destroy(object) }
    }
}

/// What a plugin's `create` calls back into: the layer's config and the declarations so far.
/// Lives for one `create` call on one thread.
final class PluginLayerBuilder {
    let config: LayerConfig
    let recurrent: Bool
    private var features: (input: Int, output: Int)?
    private var parameters: [ParameterDeclaration] = []
    private var states: [(name: String, width: Int)] = []
    private var workspace = 0
    /// The first call the builder refused, for a plugin that returns its status without a message.
    private(set) var failure: RecurError?

    /// Sizes a plugin may declare: beyond them no buffer could be allocated anyway.
    private static let largest: Int64 = 1 << 40

    init(config: LayerConfig, recurrent: Bool) {
        self.config = config
        self.recurrent = recurrent
    }

    /// Calls `body` with a recur_layer_builder that leads back to this object.
    func withCBuilder(_ body: (UnsafeMutablePointer<recur_layer_builder>) -> recur_plugin_status) -> recur_plugin_status {
        config.name.withCString { layerName in
            config.type.withCString { typeName in
                JSONValue.object(config.fields).serialized().withCString { json in
                    var builder = recur_layer_builder(
                        layer_name: layerName, type_name: typeName, config_json: json,
                        host: Unmanaged.passUnretained(self).toOpaque(),
                        get_integer: builderGetInteger, get_number: builderGetNumber, get_boolean: builderGetBoolean,
                        set_features: builderSetFeatures, add_parameter: builderAddParameter, add_state: builderAddState,
                        set_workspace: builderSetWorkspace)
                    return withExtendedLifetime(self) { body(&builder) }
                }
            }
        }
    }

    /// Runs one callback: its errors are recorded and become a status.
    static func handle(_ builder: UnsafeMutablePointer<recur_layer_builder>?, _ body: (PluginLayerBuilder) throws(RecurError) -> Void) -> recur_plugin_status {
        guard let host = builder?.pointee.host else { return RECUR_PLUGIN_ERR_INTERNAL }
        let this = Unmanaged<PluginLayerBuilder>.fromOpaque(host).takeUnretainedValue()
        do {
            try body(this)
            return RECUR_PLUGIN_OK
        } catch {
            if this.failure == nil { this.failure = error }
            return error.kind == .format ? RECUR_PLUGIN_ERR_CONFIG : RECUR_PLUGIN_ERR_INTERNAL
        }
    }

    private func refuse(_ message: String) -> RecurError {
        RecurError(.format, "layer '\(config.name)' (\(config.type)): \(message)")
    }

    /// A key or name argument as a string; NULL and invalid UTF-8 are the plugin's mistakes.
    func text(_ pointer: UnsafePointer<CChar>?, _ what: String) throws(RecurError) -> String {
        guard let pointer, let text = String(validatingCString: pointer) else { throw RecurError(.internal, "layer '\(config.name)' (\(config.type)): the plugin passed a NULL or non-UTF-8 \(what)") }
        return text
    }

    func output<T>(_ pointer: UnsafeMutablePointer<T>?) throws(RecurError) -> UnsafeMutablePointer<T> {
        guard let pointer else { throw RecurError(.internal, "layer '\(config.name)' (\(config.type)): the plugin passed a NULL out pointer") }
        return pointer
    }

    func setFeatures(input: Int64, output: Int64) throws(RecurError) {
        guard features == nil else { throw refuse("the plugin set its features twice") }
        guard (1...Self.largest).contains(input), (1...Self.largest).contains(output) else {
            throw refuse("features must be in 1 … 2^40, found \(input) → \(output)")
        }
        features = (Int(input), Int(output))
    }

    func addParameter(_ name: String, rank: Int32, shape: UnsafePointer<Int64>?) throws(RecurError) {
        guard isPluginName(name), !parameters.contains(where: { $0.suffix == name }) else {
            throw refuse("parameter name '\(name)' is not 1 … \(RECUR_PLUGIN_MAX_NAME) characters from [A-Za-z0-9_], or is declared twice")
        }
        guard (1...RECUR_PLUGIN_MAX_RANK).contains(rank), let shape else {
            throw refuse("parameter '\(name)' has rank \(rank), outside 1 … \(RECUR_PLUGIN_MAX_RANK), or a NULL shape")
        }
        let dimensions = UnsafeBufferPointer(start: shape, count: Int(rank)).map { $0 }
        guard dimensions.allSatisfy({ (1...Self.largest).contains($0) }), Tensor.elementCount(dimensions.map { Int($0) }) != nil else {
            throw refuse("parameter '\(name)' has shape \(dimensions); every dimension must be in 1 … 2^40")
        }
        parameters.append(ParameterDeclaration(name, dimensions.map { Int($0) }))
    }

    func addState(_ name: String, width: Int64) throws(RecurError) {
        guard recurrent else { throw refuse("a per-step layer type (one with forward) declares no state") }
        guard isPluginName(name), !states.contains(where: { $0.name == name }) else {
            throw refuse("state name '\(name)' is not 1 … \(RECUR_PLUGIN_MAX_NAME) characters from [A-Za-z0-9_], or is declared twice")
        }
        guard (1...Self.largest).contains(width) else { throw refuse("state '\(name)' has width \(width), outside 1 … 2^40") }
        states.append((name, Int(width)))
    }

    func setWorkspace(_ floats: Int64) throws(RecurError) {
        guard (0...Self.largest).contains(floats) else { throw refuse("workspace of \(floats) floats per sequence is outside 0 … 2^40") }
        workspace = Int(floats)
    }

    /// The declaration once `create` succeeded; refused when it is incomplete.
    func declaration(directions: Int) throws(RecurError) -> PluginLayerDeclaration {
        guard let features else { throw refuse("create succeeded without calling set_features") }
        guard !recurrent || !states.isEmpty else { throw refuse("a recurrent layer type must declare at least one state") }
        let byDirection = (0..<directions).map { d in
            parameters.map { ParameterDeclaration(d == 0 ? $0.suffix : $0.suffix + "_reverse", $0.shape) }
        }
        return PluginLayerDeclaration(inputFeatures: features.input, outputFeatures: features.output,
                                      parametersByDirection: byDirection, states: states, workspace: workspace)
    }
}

// The builder's calls, as C function pointers (they capture nothing; the builder comes through `host`).

private let builderGetInteger: @convention(c) (UnsafeMutablePointer<recur_layer_builder>?, UnsafePointer<CChar>?, UnsafePointer<Int64>?, Int64, UnsafeMutablePointer<Int64>?) -> recur_plugin_status = { builder, key, fallback, minimum, out in
    PluginLayerBuilder.handle(builder) { b throws(RecurError) in
        let key = try b.text(key, "key"), out = try b.output(out)
        // LayerConfig's integers are at most 2^40, so the minimum can be clamped to that range.
        let value = try b.config.integer(key, default: fallback.map { Int($0.pointee) }, minimum: Int(max(min(minimum, 1 << 40), -(1 << 40))))
        out.pointee = Int64(value)
    }
}

private let builderGetNumber: @convention(c) (UnsafeMutablePointer<recur_layer_builder>?, UnsafePointer<CChar>?, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?) -> recur_plugin_status = { builder, key, fallback, out in
    PluginLayerBuilder.handle(builder) { b throws(RecurError) in
        let key = try b.text(key, "key"), out = try b.output(out)
        out.pointee = try b.config.number(key, default: fallback?.pointee)
    }
}

private let builderGetBoolean: @convention(c) (UnsafeMutablePointer<recur_layer_builder>?, UnsafePointer<CChar>?, UnsafePointer<Int32>?, UnsafeMutablePointer<Int32>?) -> recur_plugin_status = { builder, key, fallback, out in
    PluginLayerBuilder.handle(builder) { b throws(RecurError) in
        let key = try b.text(key, "key"), out = try b.output(out)
        out.pointee = try b.config.boolean(key, default: fallback.map { $0.pointee != 0 }) ? 1 : 0
    }
}

private let builderSetFeatures: @convention(c) (UnsafeMutablePointer<recur_layer_builder>?, Int64, Int64) -> recur_plugin_status = { builder, input, output in
    PluginLayerBuilder.handle(builder) { b throws(RecurError) in try b.setFeatures(input: input, output: output) }
}

private let builderAddParameter: @convention(c) (UnsafeMutablePointer<recur_layer_builder>?, UnsafePointer<CChar>?, Int32, UnsafePointer<Int64>?) -> recur_plugin_status = { builder, name, rank, shape in
    PluginLayerBuilder.handle(builder) { b throws(RecurError) in try b.addParameter(try b.text(name, "parameter name"), rank: rank, shape: shape) }
}

private let builderAddState: @convention(c) (UnsafeMutablePointer<recur_layer_builder>?, UnsafePointer<CChar>?, Int64) -> recur_plugin_status = { builder, name, width in
    PluginLayerBuilder.handle(builder) { b throws(RecurError) in try b.addState(try b.text(name, "state name"), width: width) }
}

private let builderSetWorkspace: @convention(c) (UnsafeMutablePointer<recur_layer_builder>?, Int64) -> recur_plugin_status = { builder, floats in
    PluginLayerBuilder.handle(builder) { b throws(RecurError) in try b.setWorkspace(floats) }
}

/// A layer of a plugin type: [B, T, F] → [B, T, D·F'] (or a pooled [B, F] → [B, F'] for per-step
/// types). Recurrent ones run the plugin's step on the built-in driver's schedule (visitSteps).
struct PluginLayer: Layer {
    let name: String
    let kind: PluginLayerKind
    let declaration: PluginLayerDeclaration
    let object: PluginLayerObject
    /// Every parameter of every direction, one after another.
    let parameterValues: [Float]
    /// parameterOffsets[d][i]: where direction d's i-th parameter starts in parameterValues.
    let parameterOffsets: [[Int]]

    var directions: Int { declaration.directions }

    var states: [StateDeclaration] {
        declaration.states.map { StateDeclaration(name: $0.name, rows: directions, width: $0.width) }
    }

    var canStream: Bool { directions == 1 }

    func outputShape(for input: SignalShape, context: inout ShapeContext) throws(RecurError) -> SignalShape {
        switch input {
        case .sequence(let features) where features == declaration.inputFeatures:
            if let first = declaration.states.first { context.finalStateWidth = directions * first.width }
            return .sequence(features: directions * declaration.outputFeatures)
        case .pooled(let features) where features == declaration.inputFeatures && !kind.isRecurrent:
            return .pooled(features: declaration.outputFeatures)
        default:
            let takes = kind.isRecurrent ? "[B, T, \(declaration.inputFeatures)]" : "\(declaration.inputFeatures) features"
            throw RecurError.format("layer '\(name)' (\(kind.typeName), plugin '\(kind.pluginName)'): takes \(takes), but its input is \(input)")
        }
    }

    func forward(_ input: Signal, context: inout ForwardContext) throws(RecurError) -> Signal {
        switch (kind.body, input) {
        case (.perStep(let forward), .sequence(let x, let batch, let steps, _)):
            let y = try perStep(forward, x, batch: batch, steps: steps, lengths: context.lengths)
            return .sequence(y, batch: batch, steps: steps, features: declaration.outputFeatures)
        case (.perStep(let forward), .pooled(let x, let batch, _)):
            let y = try perStep(forward, x, batch: batch, steps: 1, lengths: nil)
            return .pooled(y, batch: batch, features: declaration.outputFeatures)
        case (.recurrent(let step), .sequence(let x, let batch, let steps, _)):
            return try recurrent(step, x, batch: batch, steps: steps, context: &context)
        default:
            throw RecurError(.internal, "layer '\(name)' was given a signal that shape checking refuses")
        }
    }

    /// Calls `body` with direction d's parameter pointers, in declaration order (NULL for a layer
    /// without parameters).
    private func withParameters<R>(direction d: Int, _ body: (UnsafePointer<UnsafePointer<Float>?>?) -> R) -> R {
        parameterValues.withUnsafeBufferPointer { values in
            let pointers: [UnsafePointer<Float>?] = parameterOffsets[d].map { offset in values.baseAddress.map { $0 + offset } }
            return pointers.withUnsafeBufferPointer { body($0.isEmpty ? nil : $0.baseAddress) }
        }
    }

    /// A zeroed buffer of batch · perSequence floats, refused before allocating when too large.
    private func buffer(batch: Int, perSequence: Int, _ what: String) throws(RecurError) -> [Float] {
        guard let count = Tensor.elementCount([batch, perSequence]), count <= Model.maxElementsPerBuffer else {
            throw RecurError(.outOfMemory, "layer '\(name)' (\(kind.typeName)): its \(what) for batch \(batch) would need over \(Model.maxElementsPerBuffer) floats")
        }
        return [Float](repeating: 0, count: count)
    }

    private func check(_ status: recur_plugin_status, _ message: [CChar]) throws(RecurError) {
        guard status == RECUR_PLUGIN_OK else {
            let reason = pluginMessage(message)
            throw kind.pluginError(status, reason.isEmpty ? "failed with status \(status)" : reason, layer: name)
        }
    }

    /// x [B, T, F] → [B, T, F'] through the plugin's forward.
    private func perStep(_ forward: PluginLayerKind.Forward, _ x: [Float], batch: Int, steps: Int, lengths: [Int]?) throws(RecurError) -> [Float] {
        var y = try buffer(batch: batch * steps, perSequence: declaration.outputFeatures, "output")
        var workspace = try buffer(batch: batch, perSequence: declaration.workspace, "workspace")
        let lengths = lengths.map { $0.map(Int64.init) }
        var message = [CChar](repeating: 0, count: pluginErrorCapacity)
        let status = withParameters(direction: 0) { parameters in
            x.withUnsafeBufferPointer { x in
                y.withUnsafeMutableBufferPointer { y in
                    workspace.withUnsafeMutableBufferPointer { workspace in
                        withOptionalPointer(lengths) { lengths in
                            var args = recur_forward_args(
                                batch: Int64(batch), steps: Int64(steps), input_features: Int64(declaration.inputFeatures),
                                output_features: Int64(declaration.outputFeatures), lengths: lengths, parameters: parameters,
                                input: x.baseAddress, output: y.baseAddress, workspace: workspace.isEmpty ? nil : workspace.baseAddress)
                            return forward(object.pointer, &args, &message, message.count)
                        }
                    }
                }
            }
        }
        try check(status, message)
        return y
    }

    /// x [B, T, F] → [B, T, D·F']: each direction runs the plugin's step through the sequence
    /// driver's time loop, from the given initial states (or zeros), and leaves the final states.
    private func recurrent(_ step: PluginLayerKind.Step, _ x: [Float], batch: Int, steps: Int,
                           context: inout ForwardContext) throws(RecurError) -> Signal {
        let (F, outputWidth) = (declaration.inputFeatures, declaration.outputFeatures)
        let width = directions * outputWidth
        // Every state of one direction in one buffer: state i is [B, w_i] at batch · start[i].
        let widths = declaration.states.map(\.width)
        let starts = widths.indices.map { i in batch * widths[..<i].reduce(0, +) }
        var state = try buffer(batch: batch, perSequence: widths.reduce(0, +), "state")
        var saved = state
        var workspace = try buffer(batch: batch, perSequence: declaration.workspace, "workspace")
        var y = try buffer(batch: batch * steps, perSequence: width, "output")
        var active = [UInt8](repeating: 1, count: batch)
        let initial = declaration.states.map { context.initialStates[stateTensorNames(layer: name, state: $0.name).initial] }
        var finals = widths.map { [Float](repeating: 0, count: directions * batch * $0) }
        let lengths = context.lengths
        var message = [CChar](repeating: 0, count: pluginErrorCapacity)
        for d in 0..<directions {
            for (i, w) in widths.enumerated() {
                let rows = (d * batch * w)..<((d + 1) * batch * w)
                state.replaceSubrange(starts[i]..<(starts[i] + batch * w), with: initial[i]?[rows] ?? ArraySlice(repeating: 0, count: batch * w))
            }
            let status = withParameters(direction: d) { parameters in
                x.withUnsafeBufferPointer { x in
                    y.withUnsafeMutableBufferPointer { y in
                        state.withUnsafeMutableBufferPointer { state in
                            saved.withUnsafeMutableBufferPointer { saved in
                                workspace.withUnsafeMutableBufferPointer { workspace in
                                    active.withUnsafeMutableBufferPointer { active in
                                        let statePointers: [UnsafeMutablePointer<Float>?] = starts.map { state.baseAddress! + $0 }
                                        return statePointers.withUnsafeBufferPointer { statePointers in
                                            var status = RECUR_PLUGIN_OK
                                            visitSteps(steps: steps, lengths: lengths, reverse: d == 1, active: active) { t, active in
                                                if active != nil { saved.baseAddress!.update(from: state.baseAddress!, count: state.count) }
                                                var args = recur_step_args(
                                                    batch: Int64(batch), input_features: Int64(F), output_features: Int64(outputWidth),
                                                    parameters: parameters, input: x.baseAddress! + t * F, input_stride: Int64(steps * F),
                                                    output: y.baseAddress! + t * width + d * outputWidth, output_stride: Int64(steps * width),
                                                    states: statePointers.baseAddress, active: active,
                                                    workspace: workspace.isEmpty ? nil : workspace.baseAddress)
                                                status = step(object.pointer, &args, &message, message.count)
                                                // Sequences past their length keep their state, whatever the step did.
                                                if let active {
                                                    for (i, w) in widths.enumerated() {
                                                        for b in 0..<batch where active[b] == 0 {
                                                            let row = starts[i] + b * w
                                                            (state.baseAddress! + row).update(from: saved.baseAddress! + row, count: w)
                                                        }
                                                    }
                                                }
                                                return status == RECUR_PLUGIN_OK
                                            }
                                            return status
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            try check(status, message)
            for (i, w) in widths.enumerated() {
                finals[i].replaceSubrange((d * batch * w)..<((d + 1) * batch * w), with: state[starts[i]..<(starts[i] + batch * w)])
            }
        }
        for (declared, values) in zip(declaration.states, finals) {
            context.emitFinalState(stateTensorNames(layer: name, state: declared.name).final, Tensor(floats: values, shape: [directions, batch, declared.width]))
        }
        // The first state's final value, directions side by side: [B, D·w₀] (for pool final_state).
        let w0 = widths[0]
        var top = [Float](repeating: 0, count: batch * directions * w0)
        for d in 0..<directions {
            for b in 0..<batch {
                let source = (d * batch + b) * w0
                top.replaceSubrange((b * directions + d) * w0..<((b * directions + d) + 1) * w0, with: finals[0][source..<(source + w0)])
            }
        }
        context.finalStateFeatures = top
        return .sequence(y, batch: batch, steps: steps, features: width)
    }
}

/// The time loop of a plugin's recurrent layer, on the schedule of the built-in driver
/// (rk_run_sequences): steps i = 0 ..< max(lengths), at t = i forward or max(lengths) − 1 − i
/// backward, where row b steps while t < lengths[b]; so each sequence runs t = 0 … len−1 forward
/// and t = len−1 … 0 backward. `active` [B] is filled with 1 where step t is inside the sequence;
/// `body` gets t and `active`, or nil when every sequence is inside, and returns false to stop.
/// (PluginTests checks a plugin Elman cell against the built-in rnn on this.)
private func visitSteps(steps: Int, lengths: [Int]?, reverse: Bool, active: UnsafeMutableBufferPointer<UInt8>,
                        _ body: (_ t: Int, _ active: UnsafePointer<UInt8>?) -> Bool) {
    let maxLength = lengths?.max() ?? steps
    for i in 0..<maxLength {
        let t = reverse ? maxLength - 1 - i : i
        var allActive = true
        if let lengths {
            for (b, length) in lengths.enumerated() {
                let valid = t < length
                active[b] = valid ? 1 : 0
                allActive = allActive && valid
            }
        }
        guard body(t, allActive ? nil : UnsafePointer(active.baseAddress)) else { return }
    }
}
