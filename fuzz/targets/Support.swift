// What every fuzz target shares: reading values out of the fuzzer's bytes, the golden models, and
// exercising a loaded model with inputs shaped from its own description.
import Foundation
import Recur

/// Takes typed values from the front of the fuzzer's input; past the end everything reads as 0.
struct ByteReader {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { position >= bytes.count }

    mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func uint64() -> UInt64 {
        (0..<8).reduce(0) { value, _ in value << 8 | UInt64(byte()) }
    }

    mutating func uint32() -> UInt32 {
        (0..<4).reduce(0) { value, _ in value << 8 | UInt32(byte()) }
    }

    /// Mostly small numbers, sometimes an edge value: what shapes, ids and counts look like.
    mutating func integer() -> Int {
        let selector = byte()
        switch selector {
        case 0..<200: return Int(selector % 8)
        case 200..<230: return Int(uint32() % 4096)
        case 230: return -1
        case 231: return Int.max
        case 232: return Int.min
        case 233: return Int(Int32.max)
        case 234: return Int(Int32.max) + 1
        case 235: return 1 << 32
        case 236: return 1 << 62
        default: return Int(truncatingIfNeeded: uint64())
        }
    }

    /// Any float32 bit pattern, NaN and infinities included, or a plain small value.
    mutating func float() -> Float {
        byte() < 128 ? Float(Int(byte()) - 128) / 32 : Float(bitPattern: uint32())
    }

    mutating func rest() -> [UInt8] {
        defer { position = bytes.count }
        return position < bytes.count ? Array(bytes[position...]) : []
    }
}

/// Bytes of the fuzzer's input as an array.
func fuzzBytes(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
    Array(UnsafeBufferPointer(start: data, count: size))
}

/// Where the golden cases are: $RECUR_FUZZ_MODELS, default ../shared/golden beside the repository.
let goldenDirectory = ProcessInfo.processInfo.environment["RECUR_FUZZ_MODELS"]
    ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/golden").standardized.path

/// The golden models, sorted by name.
let goldenModels: [(name: String, model: Model)] = {
    let directory = goldenDirectory
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    let models = names.compactMap { name -> (String, Model)? in
        guard let model = try? Model(path: "\(directory)/\(name)/model.safetensors") else { return nil }
        return (name, model)
    }
    guard !models.isEmpty else {
        FileHandle.standardError.write(Data("no golden models in \(directory) (set RECUR_FUZZ_MODELS)\n".utf8))
        exit(2)
    }
    return models
}()

/// The engine must answer bad input with an error; anything else it returns has to be well formed.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        FileHandle.standardError.write(Data("fuzz check failed: \(message())\n".utf8))
        abort()
    }
}

/// Runs `model` the ways a client can: whole sequences, a session in two chunks, generation, and
/// tokenizing, with small inputs shaped from the model itself (values from `reader`).
func exercise(_ model: Model, _ reader: inout ByteReader) {
    _ = model.describe().serialized()
    let batch = 1 + Int(reader.byte() % 3), steps = 1 + Int(reader.byte() % 5)
    var input: Tensor
    switch model.architecture.input {
    case .tokens(let vocabulary):
        let ids = (0..<(batch * steps)).map { _ in Int64(Int(reader.uint32()) % vocabulary) }
        input = try! Tensor.int64(ids, shape: [batch, steps])
    case .features(let size):
        guard size <= 256 else { return }
        input = try! Tensor.float32((0..<(batch * steps * size)).map { _ in reader.float() }, shape: [batch, steps, size])
    }
    if let outputs = try? model.run(["input": input]) {
        check(outputs.first?.name == "output", "run returned \(outputs.map(\.name)) without output first")
        for output in outputs {
            check(Tensor.elementCount(output.tensor.shape) == output.tensor.count, "\(output.name) has a shape that does not fit its values")
        }
    }
    if var session = try? Session(model: model) {
        _ = try? session.step(["input": input])
        _ = try? session.step(["input": input])
    }
    if model.canGenerate, case .tokens(let vocabulary) = model.architecture.input {
        let sampling = SamplingOptions(temperature: reader.float(), topK: reader.integer(), topP: reader.float(), seed: reader.uint64())
        let prompt = (0..<(1 + Int(reader.byte() % 4))).map { _ in Int(reader.uint32()) % vocabulary }
        if let tokens = try? model.generate(prompt: prompt, maxTokens: Int(reader.byte() % 8), sampling: sampling) {
            check(tokens.allSatisfy { (0..<vocabulary).contains($0) }, "generated ids \(tokens) outside [0, \(vocabulary))")
        }
    }
    if let tokenizer = model.tokenizer {
        _ = tokenizer.encode(String(decoding: reader.rest(), as: UTF8.self))
    }
}
