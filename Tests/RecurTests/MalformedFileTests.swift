import Foundation
import Recur
import Testing

/// Malformed model files are refused with a format (or io) error that names what was wrong.
@Suite struct MalformedFileTests {
    /// A small valid model: embedding → lstm → linear.
    static let architecture: JSONValue = .object([
        "format": .int(1),
        "input": .object(["kind": .string("tokens"), "vocab_size": .int(5)]),
        "layers": .array([
            .object(["name": .string("embed"), "type": .string("embedding"), "num_embeddings": .int(5), "embedding_dim": .int(3)]),
            .object(["name": .string("rnn"), "type": .string("lstm"), "input_size": .int(3), "hidden_size": .int(2)]),
            .object(["name": .string("head"), "type": .string("linear"), "in_features": .int(2), "out_features": .int(5)]),
        ]),
    ])

    static let tensors: [(name: String, shape: [Int])] = [
        ("embed.weight", [5, 3]), ("rnn.weight_ih_l0", [8, 3]), ("rnn.weight_hh_l0", [8, 2]),
        ("rnn.bias_ih_l0", [8]), ("rnn.bias_hh_l0", [8]), ("head.weight", [5, 2]), ("head.bias", [5]),
    ]

    /// A file image built from parts, so each test can break exactly one thing.
    static func image(architecture: JSONValue? = architecture, tensors: [(name: String, shape: [Int])] = tensors,
                      dtype: String = "F32", edit: (inout [String: JSONValue]) -> Void = { _ in },
                      extraData: Int = 0) -> [UInt8] {
        var header: [String: JSONValue] = [:]
        if let architecture { header["__metadata__"] = .object(["recur": .string(architecture.serialized())]) }
        var offset = 0
        let size = dtype == "F64" ? 8 : dtype == "F32" ? 4 : 2
        for t in tensors {
            let bytes = t.shape.reduce(1, *) * size
            header[t.name] = .object(["dtype": .string(dtype), "shape": .array(t.shape.map(JSONValue.int)),
                                      "data_offsets": .array([.int(offset), .int(offset + bytes)])])
            offset += bytes
        }
        edit(&header)
        let headerBytes = Array(JSONValue.object(header).serialized().utf8)
        return withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian, Array.init) + headerBytes
            + [UInt8](repeating: 0, count: offset + extraData)
    }

    static func refusal(_ bytes: [UInt8]) -> RecurError? {
        do {
            _ = try Model(bytes: bytes)
            return nil
        } catch {
            return error
        }
    }

    @Test func validImageLoads() throws {
        let model = try Model(bytes: Self.image())
        #expect(model.parameterCount == 15 + 24 + 16 + 16 + 10 + 5)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let testDescription: String
        let bytes: [UInt8]
        /// Words the message must contain.
        let mentions: [String]
    }

    static let cases: [Case] = {
        let valid = image()
        func arch(_ edit: (inout [String: JSONValue]) -> Void) -> JSONValue {
            var root = architecture.objectValue!
            edit(&root)
            return .object(root)
        }
        func layers(_ edit: (inout [JSONValue]) -> Void) -> JSONValue {
            arch { root in
                var list = root["layers"]!.arrayValue!
                edit(&list)
                root["layers"] = .array(list)
            }
        }
        return [
            Case(testDescription: "empty file", bytes: [], mentions: ["too short"]),
            Case(testDescription: "truncated data", bytes: Array(valid.dropLast(9)), mentions: ["outside"]),
            Case(testDescription: "truncated header", bytes: Array(valid.prefix(40)), mentions: ["header length"]),
            Case(testDescription: "header length over 100 MB", bytes: withUnsafeBytes(of: UInt64(200_000_000).littleEndian, Array.init) + [0x7B, 0x7D],
                 mentions: ["above the limit"]),
            Case(testDescription: "header not JSON", bytes: withUnsafeBytes(of: UInt64(4).littleEndian, Array.init) + Array("{x: ".utf8),
                 mentions: ["JSON"]),
            Case(testDescription: "lying offsets", bytes: image(edit: { $0["head.bias"] = .object(["dtype": .string("F32"), "shape": .array([.int(5)]), "data_offsets": .array([.int(0), .int(1000)])]) }),
                 mentions: ["head.bias", "data_offsets"]),
            Case(testDescription: "overlapping tensors", bytes: image(edit: { $0["head.bias"] = .object(["dtype": .string("F32"), "shape": .array([.int(5)]), "data_offsets": .array([.int(0), .int(20)])]) }),
                 mentions: ["overlap"]),
            Case(testDescription: "size does not match shape", bytes: image(edit: { $0["head.bias"] = .object(["dtype": .string("F32"), "shape": .array([.int(6)]), "data_offsets": .array([.int(0), .int(20)])]) }),
                 mentions: ["head.bias", "needs 24 bytes"]),
            Case(testDescription: "wrong shape", bytes: image(tensors: tensors.map { $0.name == "rnn.weight_hh_l0" ? ($0.name, [2, 8]) : $0 }),
                 mentions: ["rnn.weight_hh_l0", "[8, 2]", "[2, 8]"]),
            Case(testDescription: "missing tensor", bytes: image(tensors: tensors.filter { $0.name != "rnn.bias_hh_l0" }),
                 mentions: ["missing", "rnn.bias_hh_l0"]),
            Case(testDescription: "extra tensor", bytes: image(tensors: tensors + [("rnn.weight_ih_l1", [8, 2])]),
                 mentions: ["rnn.weight_ih_l1", "not used"]),
            Case(testDescription: "unknown layer type", bytes: image(architecture: layers { $0[1] = .object(["name": .string("rnn"), "type": .string("transformer")]) }),
                 mentions: ["transformer", "lstm", "gru"]),
            Case(testDescription: "future format", bytes: image(architecture: arch { $0["format"] = .int(2) }),
                 mentions: ["format 2", "newer"]),
            Case(testDescription: "integer weights", bytes: image(dtype: "I32"), mentions: ["I32"]),
            Case(testDescription: "unknown dtype", bytes: image(dtype: "F8"), mentions: ["F8"]),
            Case(testDescription: "no architecture", bytes: image(architecture: nil), mentions: ["recur"]),
            Case(testDescription: "architecture not JSON", bytes: image(edit: { $0["__metadata__"] = .object(["recur": .string("{layers")]) }),
                 mentions: ["architecture"]),
            Case(testDescription: "duplicate layer names", bytes: image(architecture: layers { $0[2] = .object(["name": .string("rnn"), "type": .string("relu")]) }),
                 mentions: ["rnn", "twice"]),
            Case(testDescription: "layer name with a dot", bytes: image(architecture: layers { $0[2] = .object(["name": .string("a.b"), "type": .string("relu")]) }),
                 mentions: ["'.'"]),
            Case(testDescription: "input_size does not match", bytes: image(architecture: layers { list in
                    list[1] = .object(["name": .string("rnn"), "type": .string("lstm"), "input_size": .int(4), "hidden_size": .int(2)])
                }, tensors: tensors.map { $0.name == "rnn.weight_ih_l0" ? ($0.name, [8, 4]) : $0 }),
                 mentions: ["rnn", "input_size is 4"]),
            Case(testDescription: "negative hidden size", bytes: image(architecture: layers { list in
                    list[1] = .object(["name": .string("rnn"), "type": .string("lstm"), "input_size": .int(3), "hidden_size": .int(-2)])
                }), mentions: ["hidden_size"]),
            Case(testDescription: "negative dimension", bytes: image(edit: { $0["head.bias"] = .object(["dtype": .string("F32"), "shape": .array([.int(-5)]), "data_offsets": .array([.int(0), .int(20)])]) }),
                 mentions: ["head.bias", "shape"]),
            Case(testDescription: "pool after pool", bytes: image(architecture: layers { list in
                    list.append(.object(["name": .string("p1"), "type": .string("pool"), "mode": .string("mean")]))
                    list.append(.object(["name": .string("p2"), "type": .string("pool"), "mode": .string("max")]))
                }), mentions: ["p2"]),
            Case(testDescription: "unknown pool mode", bytes: image(architecture: layers { list in
                    list.append(.object(["name": .string("p"), "type": .string("pool"), "mode": .string("median")]))
                }), mentions: ["mode", "median"]),
        ]
    }()

    @Test(arguments: cases)
    func refusedWithClearError(_ testCase: Case) throws {
        let error = try #require(Self.refusal(testCase.bytes), "\(testCase.testDescription) was accepted")
        #expect(error.kind == .format)
        for word in testCase.mentions {
            #expect(error.message.contains(word), "\(testCase.testDescription): “\(error.message)” should mention \(word)")
        }
    }

    @Test func missingFileIsAnIOError() throws {
        let error = #expect(throws: RecurError.self) { try Model(path: "/nonexistent/model.safetensors") }
        #expect(error?.kind == .io)
        #expect(error?.message.contains("/nonexistent/model.safetensors") == true)
    }

    @Test func directoryIsAnIOError() throws {
        let error = #expect(throws: RecurError.self) { try Model(path: "/tmp") }
        #expect(error?.kind == .io)
    }

    /// Every byte-level truncation of a valid file is refused, never a crash.
    @Test func everyTruncationIsRefused() throws {
        let valid = Self.image()
        for length in stride(from: 0, to: valid.count, by: 7) {
            #expect(Self.refusal(Array(valid.prefix(length))) != nil, "prefix of \(length) bytes was accepted")
        }
    }

    /// Random byte corruption never crashes the loader (it may or may not be refused).
    @Test func corruptedBytesNeverCrash() throws {
        let valid = Self.image()
        var state: UInt64 = 99
        for _ in 0..<300 {
            var bytes = valid
            for _ in 0..<3 {
                state = state &* 6_364_136_223_846_793_005 &+ 1
                bytes[Int(state >> 33) % bytes.count] = UInt8(truncatingIfNeeded: state >> 13)
            }
            _ = Self.refusal(bytes)
        }
    }
}

/// F16, BF16 and F64 weights are converted to float32 on load.
@Suite struct WeightDTypeTests {
    /// Weights that all three dtypes represent exactly (multiples of 1/8 in [-1, 1], over `divisor` / 8).
    static func exactWeights(_ count: Int, seed: Int, divisor: Float = 8) -> [Float] {
        (0..<count).map { Float(((seed + $0 * 5) % 17) - 8) / divisor }
    }

    static func encode(_ values: [Float], as dtype: String) -> [UInt8] {
        switch dtype {
        case "F64": return values.flatMap { withUnsafeBytes(of: Double($0).bitPattern.littleEndian, Array.init) }
        case "BF16": return values.flatMap { withUnsafeBytes(of: UInt16($0.bitPattern >> 16).littleEndian, Array.init) }
        case "F16": return values.flatMap { withUnsafeBytes(of: Float16($0).bitPattern.littleEndian, Array.init) }
        default: return values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        }
    }

    /// The file image of `architecture` with `weights` (in this order) stored as `dtype`.
    static func image(_ architecture: JSONValue, _ weights: [(name: String, shape: [Int], values: [Float])], dtype: String) -> [UInt8] {
        image(architecture, encoded: weights.map { (name: $0.name, shape: $0.shape, bytes: encode($0.values, as: dtype)) }, dtype: dtype)
    }

    /// The file image of `architecture` with tensors (in this order) whose bytes are already `dtype`'s.
    static func image(_ architecture: JSONValue, encoded tensors: [(name: String, shape: [Int], bytes: [UInt8])], dtype: String) -> [UInt8] {
        var header: [String: JSONValue] = ["__metadata__": .object(["recur": .string(architecture.serialized())])]
        var data: [UInt8] = []
        for t in tensors {
            header[t.name] = .object(["dtype": .string(dtype), "shape": .array(t.shape.map(JSONValue.int)),
                                      "data_offsets": .array([.int(data.count), .int(data.count + t.bytes.count)])])
            data += t.bytes
        }
        let headerBytes = Array(JSONValue.object(header).serialized().utf8)
        return withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian, Array.init) + headerBytes + data
    }

    static func model(dtype: String) throws -> Model {
        let weights = MalformedFileTests.tensors.enumerated().map { i, t in
            (t.name, t.shape, exactWeights(t.shape.reduce(1, *), seed: i))
        }
        return try Model(bytes: image(MalformedFileTests.architecture, weights, dtype: dtype))
    }

    @Test(arguments: ["F16", "BF16", "F64"])
    func convertedWeightsGiveTheFloat32Result(_ dtype: String) throws {
        let input = try Tensor.int64([0, 4, 2, 1, 3, 3], shape: [2, 3])
        let expected = try Self.model(dtype: "F32").run(["input": input])
        #expect(try Self.model(dtype: dtype).run(["input": input]) == expected)
    }

    /// Matrices of several blocks of LayerWeights.take(_:rows:rowLength:_:) (an eighth of each here),
    /// whose boundaries fall inside unit blocks and column panels: W_ih [1040, 300] and W_hh [1040,
    /// 260] in blocks of 130 rows, the head's [1100, 260] in blocks of 137. Packed a block at a time
    /// as they are read from a file or an image in any float dtype, they compute what the same
    /// weights given in memory compute, bit for bit.
    @Test(arguments: ["F32", "F16", "BF16", "F64"])
    func matricesReadInBlocksGiveTheInMemoryResult(_ dtype: String) throws {
        let (features, hidden, classes) = (300, 260, 1100)
        let architecture: JSONValue = .object([
            "format": .int(1), "input": .object(["kind": .string("features"), "size": .int(features)]),
            "layers": .array([
                .object(["name": .string("rnn"), "type": .string("lstm"), "input_size": .int(features), "hidden_size": .int(hidden)]),
                .object(["name": .string("head"), "type": .string("linear"), "in_features": .int(hidden), "out_features": .int(classes)]),
            ]),
        ])
        let shapes: [(String, [Int])] = [
            ("rnn.weight_ih_l0", [4 * hidden, features]), ("rnn.weight_hh_l0", [4 * hidden, hidden]), ("rnn.bias_ih_l0", [4 * hidden]),
            ("rnn.bias_hh_l0", [4 * hidden]), ("head.weight", [classes, hidden]), ("head.bias", [classes]),
        ]
        let weights = shapes.enumerated().map { i, t in (t.0, t.1, Self.exactWeights(t.1.reduce(1, *), seed: i, divisor: 64)) }
        let input = ["input": try Tensor.float32(testValues(3 * 4 * features, seed: 9), shape: [3, 4, features])]
        try Self.expectFileAndImageGiveTheInMemoryResult(architecture, weights, dtype: dtype, input: input)
    }

    /// A table that SafeTensorsFile.floats decodes in several blocks of 256 KiB of the file's bytes
    /// (131072 elements of F16 and BF16, 32768 of F64), whose boundaries fall inside rows: an
    /// embedding [700, 500] looked up at rows that straddle them (65 for F64, 262 and 524 for the
    /// others) and at its ends gives the rows of the same table in memory.
    @Test(arguments: ["F32", "F16", "BF16", "F64"])
    func tablesDecodedInBlocksGiveTheInMemoryResult(_ dtype: String) throws {
        let (count, dimension) = (700, 500)
        let architecture: JSONValue = .object([
            "format": .int(1), "input": .object(["kind": .string("tokens"), "vocab_size": .int(count)]),
            "layers": .array([.object(["name": .string("embed"), "type": .string("embedding"),
                                       "num_embeddings": .int(count), "embedding_dim": .int(dimension)])]),
        ])
        let weights = [("embed.weight", [count, dimension], Self.exactWeights(count * dimension, seed: 3, divisor: 64))]
        let input = ["input": try Tensor.int64([0, 65, 262, 524, 699, 131, 393, 655], shape: [2, 4])]
        try Self.expectFileAndImageGiveTheInMemoryResult(architecture, weights, dtype: dtype, input: input)
    }

    /// The model of `weights` stored as `dtype` in a file and in an image runs `input` as the same
    /// weights given in memory do, bit for bit.
    static func expectFileAndImageGiveTheInMemoryResult(_ architecture: JSONValue, _ weights: [(String, [Int], [Float])],
                                                        dtype: String, input: [String: Tensor]) throws {
        let inMemory = try Model(architecture: try Architecture(json: architecture),
                                 weights: Dictionary(uniqueKeysWithValues: try weights.map { ($0.0, try Tensor.float32($0.2, shape: $0.1)) }))
        let image = Self.image(architecture, weights.map { (name: $0.0, shape: $0.1, values: $0.2) }, dtype: dtype)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("blocks-\(dtype)-\(getpid())-\(image.count).safetensors").path
        try Data(image).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let expected = try inMemory.run(input)
        #expect(try Model(path: path).run(input) == expected)
        #expect(try Model(bytes: image).run(input) == expected)
    }

    /// A table kept in its file's 16 bits (EmbeddingTable) widens every one of the 65536 bit patterns as
    /// PyTorch does: binary16 exactly as Swift's Float16 converts it (subnormals, ±0, ±65504 and the
    /// infinities; NaNs stay NaN), bfloat16 as the high half of a float32. The table [256, 256] holds
    /// pattern 256·r + c at row r, column c, and every row is looked up, the last first.
    @Test(arguments: ["F16", "BF16"])
    func halfTablesWidenEveryBitPatternExactly(_ dtype: String) throws {
        let side = 256
        let architecture: JSONValue = .object([
            "format": .int(1), "input": .object(["kind": .string("tokens"), "vocab_size": .int(side)]),
            "layers": .array([.object(["name": .string("embed"), "type": .string("embedding"),
                                       "num_embeddings": .int(side), "embedding_dim": .int(side)])]),
        ])
        let widened: (UInt16) -> Float = dtype == "F16" ? { Float(Float16(bitPattern: $0)) } : { Float(bitPattern: UInt32($0) << 16) }
        let patterns = (0..<side * side).map { UInt16($0) }
        // The patterns as they are: encoding floats would make a signalling NaN quiet.
        let bytes = patterns.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
        let image = Self.image(architecture, encoded: [(name: "embed.weight", shape: [side, side], bytes: bytes)], dtype: dtype)
        let rows = (0..<side).map { Int64(side - 1 - $0) }
        let outputs = try Model(bytes: image).run(["input": try Tensor.int64(rows, shape: [1, side])])
        let output = try #require(outputs.first { $0.name == "output" }?.tensor.floats)
        #expect(output.count == side * side)
        var mismatches = 0
        for (i, value) in output.enumerated() {
            let pattern = patterns[Int(rows[i / side]) * side + i % side], expected = widened(pattern)
            if expected.isNaN ? !value.isNaN : value.bitPattern != expected.bitPattern { mismatches += 1 }
        }
        #expect(mismatches == 0, "\(mismatches) of \(output.count) values of a \(dtype) table widened wrong")
    }
}
