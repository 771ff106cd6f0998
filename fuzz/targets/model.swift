// Fuzz target: model file bytes (safetensors container, header JSON, architecture JSON, weights).
// A file either loads or is refused with an error; a model that loads must then run, stream,
// generate and tokenize without crashing.
import Recur

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModelFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    if let file = try? SafeTensorsFile(bytes: bytes) {
        for entry in file.entries { _ = try? file.tensor(entry) }
    }
    guard let model = try? Model(bytes: bytes) else { return 0 }
    var reader = ByteReader(Array(bytes.suffix(64)))
    exercise(model, &reader)
    return 0
}
