import Foundation
import Recur
import Testing
@testable import RecurTraining

/// Inputs that used to crash the process (a trap, an endless allocation, a read past a buffer):
/// each must now be refused with an error that names what was wrong.
@Suite struct HardeningTests {
    /// A model file image with one tensor entry of `shape` whose data_offsets give `bytes` bytes.
    static func file(shape: [Int], bytes: Int) -> [UInt8] {
        let header = JSONValue.object([
            "__metadata__": .object(["recur": .string(MalformedFileTests.architecture.serialized())]),
            "w": .object(["dtype": .string("F32"), "shape": .array(shape.map(JSONValue.int)),
                          "data_offsets": .array([.int(0), .int(bytes)])]),
        ])
        let text = Array(header.serialized().utf8)
        return withUnsafeBytes(of: UInt64(text.count).littleEndian, Array.init) + text + [UInt8](repeating: 0, count: bytes)
    }

    /// A file cut short after its header was read (a model copied over while it loads) is reported
    /// when a tensor's bytes come up short. Mapped into memory, it killed the process with SIGBUS.
    @Test func fileTruncatedWhileReadIsAnError() throws {
        let path = try scratchDirectory().appendingPathComponent("model.safetensors").path
        let weights = (0..<4096).map { Float($0) }
        try SafeTensorsWriter.write([("a", try .float32(weights, shape: [4096])), ("b", try .float32(weights, shape: [4096]))], to: path)
        let file = try SafeTensorsFile(path: path)
        let a = try #require(file.entry("a")), b = try #require(file.entry("b"))
        #expect(try file.tensor(a).floats == weights)
        #expect(truncate(path, off_t(b.range.lowerBound + 100)) == 0)
        let failure = HardeningTests.error { _ = try file.tensor(b) }
        #expect(failure?.kind == .io)
        #expect(failure?.message.contains("the file ends at byte \(b.range.lowerBound + 100)") == true, "\(String(describing: failure))")
        #expect(try file.tensor(a).floats == weights)
    }

    /// A layer kind that keeps the LayerWeights it was given cannot read a borrowed image through
    /// them once the load has returned (the caller may have freed it): taking a tensor then is an error.
    @Test func weightsKeptPastTheLoadReadNothing() throws {
        let registry = LayerRegistry.builtins()
        try registry.register(KeepingLinearKind(inner: try #require(registry.kind(named: "linear"))))
        var architecture = MalformedFileTests.architecture
        if case .object(var fields) = architecture, case .array(var layers) = fields["layers"], case .object(var head) = layers[2] {
            head["type"] = .string("keeping_linear")
            layers[2] = .object(head)
            fields["layers"] = .array(layers)
            architecture = .object(fields)
        }
        let image = WeightDTypeTests.image(architecture, MalformedFileTests.tensors.enumerated().map { i, t in
            (t.name, t.shape, WeightDTypeTests.exactWeights(t.shape.reduce(1, *), seed: i))
        }, dtype: "F32")
        let model = try image.withUnsafeBytes { raw in try Model(borrowing: raw, registry: registry) }
        #expect(try model.run(["input": try Tensor.int64([0, 4, 2], shape: [1, 3])]).count == 3)
        let kept = try #require(KeepingLinearKind.kept)
        let failure = HardeningTests.error { _ = try kept.take("weight") }
        #expect(failure?.kind == .internal)
        #expect(failure?.message.contains("after its model was loaded") == true, "\(String(describing: failure))")
    }

    /// `linear` under another name, keeping the LayerWeights it is built from where strict concurrency
    /// would not let it: as a kind compiled without it could.
    struct KeepingLinearKind: LayerKind {
        /// Set by the one test that registers this kind, read by it after the load.
        nonisolated(unsafe) static var kept: LayerWeights?
        let inner: any LayerKind
        var typeName: String { "keeping_linear" }
        func parameters(_ config: LayerConfig) throws(RecurError) -> [ParameterDeclaration] { try inner.parameters(config) }
        func makeLayer(_ config: LayerConfig, weights: [String: [Float]]) throws(RecurError) -> any Layer {
            try inner.makeLayer(config, weights: weights)
        }
        func makeLayer(_ config: LayerConfig, loading weights: LayerWeights) throws(RecurError) -> any Layer {
            Self.kept = weights
            return try inner.makeLayer(config, loading: weights)
        }
    }

    /// The error `body` throws, or nil when it throws none.
    static func error(_ body: () throws -> Void) -> RecurError? {
        do {
            try body()
            return nil
        } catch let error as RecurError {
            return error
        } catch {
            return RecurError(.internal, "not a RecurError: \(error)")
        }
    }

    /// The element count fits Int but its byte size does not: the message computing it overflowed.
    @Test func byteSizeOverflowingIntIsAFormatError() throws {
        let error = try #require(Self.error { _ = try SafeTensorsFile(bytes: Self.file(shape: [1 << 62], bytes: 4)) })
        #expect(error.kind == .format)
        #expect(error.message.contains("tensor w"))
        #expect(error.message.contains("too many bytes"))
    }

    /// num_layers is a count of tensor lists: 2⁴⁰ of them would be built before any tensor is read.
    @Test func absurdStackDepthIsAFormatError() throws {
        var root = try #require(MalformedFileTests.architecture.objectValue)
        var layers = try #require(root["layers"]?.arrayValue)
        layers[1] = .object(["name": .string("rnn"), "type": .string("lstm"), "input_size": .int(3), "hidden_size": .int(2),
                             "num_layers": .int(1 << 40)])
        root["layers"] = .array(layers)
        let error = try #require(MalformedFileTests.refusal(MalformedFileTests.image(architecture: .object(root))))
        #expect(error.kind == .format)
        #expect(error.message.contains("num_layers"))
        #expect(error.message.contains("65536"))
    }

    /// open(2) would read the path only up to the NUL: another file than the one named.
    @Test func pathWithNulIsAnIOError() throws {
        let path = goldenDirectory + "/lstm_basic/model.safetensors"
        _ = try Model(path: path)
        let error = try #require(Self.error { _ = try Model(path: path + "\0/../../other") })
        #expect(error.kind == .io)
        #expect(error.message.contains("NUL"))
    }

    /// Requests of very different shapes merged into one padded batch: [30001, 30000] steps times
    /// the widest step is over 2³⁴ floats on any machine, so the merge is refused before its padding
    /// is allocated, and every request gets the answer it gets alone.
    @Test func skewedBatchIsAnsweredRequestByRequest() throws {
        let model = try Model(bytes: MalformedFileTests.image())
        let long = try Tensor.int64([Int64](repeating: 1, count: 30000), shape: [1, 30000])
        let wide = try Tensor.int64([Int64](repeating: 2, count: 30000), shape: [30000, 1])
        let results = Batching.run(model, [["input": long], ["input": wide]])
        #expect(try results[0].get() == model.run(["input": long]))
        #expect(try results[1].get() == model.run(["input": wide]))
    }
}

/// `recur train` checks the architecture before sizing anything from it.
@Suite struct TrainingInputHardeningTests {
    private func trainer(_ architecture: String, data: String) throws -> Trainer {
        var options = TrainingOptions(task: .lm)
        options.epochs = 1
        return try Trainer(architecture: try JSONValue.parse(architecture), trainPath: try temporaryFile("lm.txt", data), validPath: nil, options: options)
    }

    /// An embedding of 2³¹ × 2⁴⁰ floats: its size overflowed Int while the trainer laid out parameters.
    @Test func parametersBeyondMemoryAreRefused() throws {
        let architecture = """
        {"format": 1, "input": {"kind": "tokens", "vocab_size": "auto"},
         "layers": [{"name": "embed", "type": "embedding", "num_embeddings": 2147483647, "embedding_dim": 1099511627776},
                    {"name": "head", "type": "linear", "in_features": 1099511627776, "out_features": "auto"}]}
        """
        let error = try #require(HardeningTests.error { _ = try trainer(architecture, data: "abcabcabc") })
        #expect(error.kind == .outOfMemory)
        #expect(error.message.contains("embed.weight"))
    }

    /// Token ids index the embedding table: one with fewer rows than the vocabulary was read past its end.
    @Test func embeddingSmallerThanTheVocabularyIsRefused() throws {
        let architecture = """
        {"format": 1, "input": {"kind": "tokens", "vocab_size": "auto"},
         "layers": [{"name": "embed", "type": "embedding", "num_embeddings": 2, "embedding_dim": 4},
                    {"name": "enc", "type": "gru", "input_size": 4, "hidden_size": 4},
                    {"name": "head", "type": "linear", "in_features": 4, "out_features": "auto"}]}
        """
        let error = try #require(HardeningTests.error { _ = try trainer(architecture, data: "abcdefabcdef") })
        #expect(error.kind == .format)
        #expect(error.message.contains("num_embeddings is 2"))
        #expect(error.message.contains("8 tokens"))
    }
}
