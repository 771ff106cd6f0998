import Foundation
import Recur
import Testing

/// Where the plugins are built: the example by `make -C bindings/c/plugins`, the test plugins by
/// `make -C Tests/plugins` ($RECUR_TEST_PLUGINS, else .build/test-plugins).
enum PluginPaths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let example = root + "/bindings/c/plugins/build/librecur_example_layers.so"
    static func test(_ name: String) -> String {
        (ProcessInfo.processInfo.environment["RECUR_TEST_PLUGINS"] ?? root + "/.build/test-plugins") + "/\(name).so"
    }
    static func fixture(_ name: String) -> String { root + "/Tests/RecurTests/Fixtures/plugins/\(name)" }
}

/// A registry of built-ins plus the example plugin.
func registryWithExamplePlugin() throws -> LayerRegistry {
    let registry = LayerRegistry.builtins()
    try registry.loadPlugin(path: PluginPaths.example)
    return registry
}

/// The plugin layer types of bindings/c/plugins through the engine, against the numpy reference
/// (Fixtures/make_plugin_fixtures.py), and every way a plugin is refused.
@Suite struct PluginTests {
    @Test func examplePluginRegistersItsTypes() throws {
        let registry = LayerRegistry.builtins()
        let before = registry.typeNames
        let loaded = try registry.loadPlugin(path: PluginPaths.example)
        #expect(loaded.name == "example-layers")
        #expect(loaded.typeNames == ["mgu", "peephole_lstm", "layer_norm"])
        #expect(Set(registry.typeNames) == Set(before + loaded.typeNames))
    }

    @Test(arguments: ["mgu_norm", "peephole_bidirectional"])
    func matchesNumpyReference(_ name: String) throws {
        let model = try Model(path: PluginPaths.fixture("\(name).model.safetensors"), registry: try registryWithExamplePlugin())
        let file = try SafeTensorsFile(path: PluginPaths.fixture("\(name).case.safetensors"))
        var inputs: [String: Tensor] = [:], expected: [String: Tensor] = [:]
        for entry in file.entries {
            if entry.name.hasPrefix("expected.") {
                expected[String(entry.name.dropFirst("expected.".count))] = try file.tensor(entry)
            } else {
                inputs[entry.name] = try file.tensor(entry)
            }
        }
        let outputs = try model.run(inputs)
        #expect(outputs.map(\.name).sorted() == expected.keys.sorted())
        for output in outputs {
            let want = try #require(expected[output.name])
            let ratio = try #require(toleranceRatio(output.tensor, want), "\(output.name) shape")
            #expect(ratio <= 1, "\(name) \(output.name): \(ratio)× the tolerance")
        }
    }

    @Test func unknownWithoutThePlugin() throws {
        #expect {
            try Model(path: PluginPaths.fixture("mgu_norm.model.safetensors"), registry: .builtins())
        } throws: { ($0 as? RecurError)?.message.contains("unknown type 'mgu'") == true }
    }

    @Test func sessionStreamsThroughAPluginRecurrentType() throws {
        let model = try Model(path: PluginPaths.fixture("mgu_norm.model.safetensors"), registry: try registryWithExamplePlugin())
        #expect(model.stateInputs.map(\.name) == ["enc.h0"])
        let (batch, steps, features) = (2, 9, 5)
        let x = testValues(batch * steps * features, seed: 5)
        let whole = try model.run(["input": try Tensor.float32(x, shape: [batch, steps, features])])
        var session = try Session(model: model)
        var chunks: [[Float]] = []
        var final: [NamedTensor] = []
        for (start, count) in [(0, 4), (4, 1), (5, 4)] {
            var chunk: [Float] = []
            for b in 0..<batch { chunk += x[(b * steps + start) * features..<(b * steps + start + count) * features] }
            final = try session.step(["input": try Tensor.float32(chunk, shape: [batch, count, features])])
            chunks.append(try #require(final.first?.tensor.floats))
        }
        // Chunk outputs side by side per sequence equal the whole run's [B, T, 3].
        let wholeOutput = try #require(whole.first?.tensor.floats)
        var joined: [Float] = []
        for b in 0..<batch {
            for (chunk, count) in zip(chunks, [4, 1, 4]) { joined += chunk[(b * count * 3)..<((b + 1) * count * 3)] }
        }
        #expect(zip(joined, wholeOutput).allSatisfy { abs($0 - $1) <= 1e-6 })
        #expect(final.last?.name == "enc.h_n")
        #expect(final.last?.tensor == whole.last?.tensor)
    }

    @Test func configErrorsNameThePluginAndKey() throws {
        let registry = try registryWithExamplePlugin()
        let architecture = try Architecture(parsing: """
            {"format": 1, "input": {"kind": "features", "size": 3},
             "layers": [{"name": "enc", "type": "mgu", "input_size": 3, "hidden_size": "six"}]}
            """)
        #expect {
            try Model(architecture: architecture, weights: [:], registry: registry)
        } throws: { error in
            guard let error = error as? RecurError else { return false }
            return error.kind == .format && error.message.contains("plugin 'example-layers'") && error.message.contains("hidden_size")
        }
        let badEps = try Architecture(parsing: """
            {"format": 1, "input": {"kind": "features", "size": 3},
             "layers": [{"name": "norm", "type": "layer_norm", "normalized_shape": 3, "eps": -1}]}
            """)
        #expect {
            try Model(architecture: badEps, weights: [:], registry: registry)
        } throws: { ($0 as? RecurError)?.message == "plugin 'example-layers': layer 'norm' (layer_norm): eps must be positive, found -1" }
    }

    @Test func missingPluginWeightIsAFormatError() throws {
        let architecture = try Architecture(parsing: """
            {"format": 1, "input": {"kind": "features", "size": 3},
             "layers": [{"name": "norm", "type": "layer_norm", "normalized_shape": 3}]}
            """)
        #expect {
            try Model(architecture: architecture, weights: ["norm.weight": try Tensor.float32([1, 1, 1], shape: [3])],
                      registry: try registryWithExamplePlugin())
        } throws: { ($0 as? RecurError)?.message == "missing tensor norm.bias with shape [3]" }
    }

    @Test func runTimeFailureNamesPluginAndLayer() throws {
        let registry = LayerRegistry.builtins()
        try registry.loadPlugin(path: PluginPaths.test("picky"))
        let model = try Model(architecture: try Architecture(parsing: """
            {"format": 1, "input": {"kind": "features", "size": 1}, "layers": [{"name": "p", "type": "picky"}]}
            """), weights: [:], registry: registry)
        let fine = try model.run(["input": try Tensor.float32([1, 2, 3], shape: [1, 3, 1])])
        #expect(fine.first?.tensor.floats == [1, 2, 3])
        #expect(fine.last?.tensor.floats == [3])
        #expect {
            try model.run(["input": try Tensor.float32([1, 500], shape: [2, 1, 1])])
        } throws: { ($0 as? RecurError) == RecurError(.invalidInput, "plugin 'test-plugin': layer 'p' (picky): input 500 is above 100") }
    }

    @Test func createThatIgnoresARefusedDeclarationFails() throws {
        let registry = LayerRegistry.builtins()
        try registry.loadPlugin(path: PluginPaths.test("picky"))
        let architecture = try Architecture(parsing: """
            {"format": 1, "input": {"kind": "features", "size": 1}, "layers": [{"name": "s", "type": "sloppy"}]}
            """)
        #expect {
            try Model(architecture: architecture, weights: [:], registry: registry)
        } throws: { error in
            guard let error = error as? RecurError else { return false }
            return error.kind == .format && error.message.hasPrefix("plugin 'test-plugin': layer 's' (sloppy): parameter name 'bad.name'")
        }
    }

    struct Stack: Sendable, CustomTestStringConvertible {
        let directions: Int
        let lengths: [Int64]?
        let withState: Bool
        let pooled: Bool
        var testDescription: String { "D\(directions) lengths \(lengths ?? []) state \(withState) pooled \(pooled)" }
    }

    /// The test plugin's "elman" is the built-in rnn (tanh) as a plugin step that computes every
    /// row, even past its length: through the engine both give the same outputs and states, so a
    /// plugin recurrent type gets the built-in driver's lengths, directions, initial and final
    /// states and pool final_state.
    @Test(arguments: [
        Stack(directions: 2, lengths: [5, 2, 4], withState: true, pooled: false),
        Stack(directions: 2, lengths: [1, 5, 3], withState: false, pooled: true),
        Stack(directions: 1, lengths: nil, withState: true, pooled: false),
    ])
    func pluginElmanEqualsBuiltinRNN(_ stack: Stack) throws {
        let registry = LayerRegistry.builtins()
        try registry.loadPlugin(path: PluginPaths.test("picky"))
        let (batch, steps, features, hidden) = (3, 5, 4, 6)
        func architecture(_ type: String) throws -> Architecture {
            try Architecture(parsing: """
                {"format": 1, "input": {"kind": "features", "size": \(features)}, "layers": [
                 {"name": "enc", "type": "\(type)", "input_size": \(features), "hidden_size": \(hidden), "bidirectional": \(stack.directions == 2)}
                 \(stack.pooled ? ", {\"name\": \"pool\", \"type\": \"pool\", \"mode\": \"final_state\"}" : "")]}
                """)
        }
        var builtin: [String: Tensor] = [:], plugin: [String: Tensor] = [:]
        for d in 0..<stack.directions {
            let suffix = d == 0 ? "" : "_reverse"
            for (i, (name, shape)) in [("weight_ih", [hidden, features]), ("weight_hh", [hidden, hidden]), ("bias_ih", [hidden]), ("bias_hh", [hidden])].enumerated() {
                let values = try Tensor.float32(testValues(shape.reduce(1, *), seed: UInt64(10 * d + i), scale: 0.5), shape: shape)
                builtin["enc.\(name)_l0\(suffix)"] = values
                plugin["enc.\(name)\(suffix)"] = values
            }
        }
        let reference = try Model(architecture: try architecture("rnn"), weights: builtin, registry: registry)
        let model = try Model(architecture: try architecture("elman"), weights: plugin, registry: registry)
        var inputs = ["input": try Tensor.float32(testValues(batch * steps * features, seed: 99), shape: [batch, steps, features])]
        if let lengths = stack.lengths { inputs["lengths"] = try Tensor.int64(lengths, shape: [batch]) }
        if stack.withState {
            inputs["enc.h0"] = try Tensor.float32(testValues(stack.directions * batch * hidden, seed: 7), shape: [stack.directions, batch, hidden])
        }
        let expected = try reference.run(inputs), outputs = try model.run(inputs)
        #expect(outputs.map(\.name) == expected.map(\.name))
        for (got, want) in zip(outputs, expected) {
            let ratio = try #require(toleranceRatio(got.tensor, want.tensor), "\(got.name) shape")
            #expect(ratio <= 1, "\(got.name): \(ratio)× the tolerance")
        }
    }

    struct Refusal: Sendable, CustomTestStringConvertible {
        let plugin: String
        let kind: RecurError.Kind
        let mention: String
        var testDescription: String { plugin }
    }

    static let refusals = [
        Refusal(plugin: "wrong_abi", kind: .unsupported, mention: "built for plugin ABI version 2; this Recur speaks version 1"),
        Refusal(plugin: "no_entry", kind: .unsupported, mention: "exports no recur_plugin_init"),
        Refusal(plugin: "duplicate", kind: .invalidArgument, mention: "layer type 'lstm' is already registered"),
        Refusal(plugin: "failing", kind: .unsupported, mention: "refused to load: no licence for this machine"),
        Refusal(plugin: "malformed", kind: .format, mention: "type 'malformed_type' must have exactly one of forward"),
        Refusal(plugin: "not_a_library", kind: .io, mention: "cannot be loaded"),
        Refusal(plugin: "missing", kind: .io, mention: "No such file"),
    ]

    @Test(arguments: refusals)
    func refusedPluginChangesNothing(_ refusal: Refusal) throws {
        let registry = LayerRegistry.builtins()
        let before = registry.typeNames
        let path = PluginPaths.test(refusal.plugin)
        #expect {
            try registry.loadPlugin(path: path)
        } throws: { error in
            guard let error = error as? RecurError else { return false }
            return error.kind == refusal.kind && error.message.contains(refusal.mention) && error.message.contains(path)
        }
        #expect(registry.typeNames == before)
    }

    @Test func sameTypesTwiceAreRefused() throws {
        let registry = try registryWithExamplePlugin()
        let before = registry.typeNames
        #expect {
            try registry.loadPlugin(path: PluginPaths.example)
        } throws: { ($0 as? RecurError)?.message.contains("layer type 'mgu' is already registered") == true }
        #expect(registry.typeNames == before)
        // The first load's types still work.
        #expect(try Model(path: PluginPaths.fixture("mgu_norm.model.safetensors"), registry: registry).layers.count == 3)
    }
}
