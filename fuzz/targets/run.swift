// Fuzz target: run inputs against the golden models — tensor names, dtypes, ranks, shapes and
// values (token ids, lengths, initial states), whole runs, batched runs, session chunks, and
// generation options. Every call either answers or throws; the models stay usable.
import Recur

/// A tensor whose shape and values come from the fuzzer; usually the values fit the shape.
func fuzzTensor(_ reader: inout ByteReader) -> Tensor? {
    let rank = Int(reader.byte() % 5)
    let shape = (0..<rank).map { _ in reader.integer() }
    var count = Tensor.elementCount(shape) ?? 0
    if count > 4096 || reader.byte() == 255 { count = Int(reader.byte()) }  // a mismatch: must be refused
    switch reader.byte() % 3 {
    case 0: return try? Tensor.float32((0..<count).map { _ in reader.float() }, shape: shape)
    case 1: return try? Tensor.int32((0..<count).map { _ in Int32(truncatingIfNeeded: reader.integer()) }, shape: shape)
    default: return try? Tensor.int64((0..<count).map { _ in Int64(truncatingIfNeeded: reader.integer()) }, shape: shape)
    }
}

func fuzzInputs(_ model: Model, _ reader: inout ByteReader) -> [String: Tensor] {
    let names = ["input", "lengths", "bogus"] + model.stateInputs.map(\.name)
    var inputs: [String: Tensor] = [:]
    for _ in 0..<(1 + Int(reader.byte() % 4)) {
        let name = names[Int(reader.byte()) % names.count]
        if let tensor = fuzzTensor(&reader) { inputs[name] = tensor }
    }
    return inputs
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRun(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var reader = ByteReader(fuzzBytes(data, size))
    let model = goldenModels[Int(reader.byte()) % goldenModels.count].model
    switch reader.byte() % 4 {
    case 0:
        _ = try? model.run(fuzzInputs(model, &reader))
    case 1:
        let requests = (0..<(1 + Int(reader.byte() % 3))).map { _ in fuzzInputs(model, &reader) }
        let results = Batching.run(model, requests)
        check(results.count == requests.count, "batching answered \(results.count) of \(requests.count) requests")
    case 2:
        guard var session = try? Session(model: model) else { return 0 }
        for _ in 0..<(1 + Int(reader.byte() % 3)) {
            _ = try? session.step(fuzzInputs(model, &reader))
        }
    default:
        let sampling = SamplingOptions(temperature: reader.float(), topK: reader.integer(), topP: reader.float(), seed: reader.uint64())
        let prompt = (0..<Int(reader.byte() % 6)).map { _ in reader.integer() }
        let stop = Set((0..<Int(reader.byte() % 3)).map { _ in reader.integer() })
        _ = try? model.generate(prompt: prompt, maxTokens: reader.integer() % 16, sampling: sampling, stop: stop)
    }
    return 0
}
