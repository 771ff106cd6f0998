// Fuzz target: `recur train`'s inputs — the architecture (with "auto" sizes), the task and the
// data file (text lines, or a safetensors file of features) — through one epoch of training and
// the written model's reload. Input: architecture JSON, NUL, a task byte, NUL, the data file's bytes.
import Foundation
import Recur
import RecurTraining

let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("recur-fuzz-train-\(getpid())").path

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTrain(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    let parts = bytes.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
    guard parts.count == 3, let json = try? JSONValue.parse(Array(parts[0])) else { return 0 }
    let task = TrainingTask.allCases[Int(parts[1].first ?? 0) % TrainingTask.allCases.count]
    try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    let dataPath = scratch + "/data", outPath = scratch + "/model.safetensors"
    guard FileManager.default.createFile(atPath: dataPath, contents: Data(parts[2])) else { return 0 }
    var options = TrainingOptions(task: task)
    options.epochs = 1
    options.batchSize = 1 + Int(parts[1].first ?? 0) % 4
    options.bptt = 8
    guard let trainer = try? Trainer(architecture: json, trainPath: dataPath, validPath: nil, options: options),
          trainer.parameterCount <= 1 << 16, trainer.trainingTokens <= 4096 else { return 0 }
    guard (try? trainer.run(outputPath: outPath, report: { _ in }, shouldStop: { false })) != nil else { return 0 }
    _ = try? trainer.score(dataPath: dataPath)
    if let model = try? Model(path: outPath) {
        var reader = ByteReader(Array(parts[2].prefix(64)))
        exercise(model, &reader)
    }
    return 0
}
