// Fuzz target: the architecture document alone, with weights made to fit whatever it declares,
// so every layer type's settings and their combinations are explored without a file around them.
// Input: architecture JSON text, then (after a NUL byte) bytes that shape the run inputs.
import Recur

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzArchitecture(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    let split = bytes.firstIndex(of: 0) ?? bytes.count
    guard let architecture = try? Architecture(parsing: String(decoding: bytes[..<split], as: UTF8.self)) else { return 0 }
    var weights: [String: Tensor] = [:]
    var total = 0
    for config in architecture.layers {
        guard let kind = LayerRegistry.shared.kind(named: config.type),
              let declared = try? kind.parameters(config) else { return 0 }
        for parameter in declared {
            // Only what fits a fuzzing run; larger models are the loader's business, not this target's.
            guard let count = Tensor.elementCount(parameter.shape), count <= 1 << 16 else { return 0 }
            total += count
            guard total <= 1 << 18 else { return 0 }
            let values = (0..<count).map { Float(($0 * 7919) % 13) / 13 - 0.5 }
            weights["\(config.name).\(parameter.suffix)"] = try! Tensor.float32(values, shape: parameter.shape)
        }
    }
    guard let model = try? Model(architecture: architecture, weights: weights) else { return 0 }
    var reader = ByteReader(split < bytes.count ? Array(bytes[(split + 1)...]) : [])
    exercise(model, &reader)
    return 0
}
