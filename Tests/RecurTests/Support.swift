import Foundation
import Recur

/// Where the shared reference cases live: $RECUR_GOLDEN_DIR, else ../shared/golden beside the package.
let goldenDirectory: String = {
    if let dir = ProcessInfo.processInfo.environment["RECUR_GOLDEN_DIR"] { return dir }
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/golden").path
}()

/// The case names listed in the golden index.
func goldenCaseNames() throws -> [String] {
    let data = try Data(contentsOf: URL(fileURLWithPath: goldenDirectory + "/index.json"))
    let index = try JSONValue.parse(Array(data))
    return (index["cases"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
}

/// A golden case: its model, its inputs, and the expected outputs by output name.
struct GoldenCase {
    let model: Model
    let inputs: [String: Tensor]
    let expected: [String: Tensor]

    init(_ name: String) throws {
        let dir = goldenDirectory + "/" + name
        model = try Model(path: dir + "/model.safetensors")
        let file = try SafeTensorsFile(path: dir + "/case.safetensors")
        var inputs: [String: Tensor] = [:]
        var expected: [String: Tensor] = [:]
        for entry in file.entries {
            let tensor = try file.tensor(entry)
            if entry.name.hasPrefix("expected.") {
                expected[String(entry.name.dropFirst("expected.".count))] = tensor
            } else {
                inputs[entry.name] = tensor
            }
        }
        self.inputs = inputs
        self.expected = expected
    }
}

/// The largest violation of |a − b| ≤ max(absolute, relative·|b|), as a ratio (≤ 1 passes), or nil
/// when shapes differ.
func toleranceRatio(_ actual: Tensor, _ expected: Tensor, relative: Float = 1e-4, absolute: Float = 1e-5) -> Float? {
    guard actual.shape == expected.shape, let a = actual.floats, let b = expected.floats else { return nil }
    var worst: Float = 0
    for (x, y) in zip(a, b) {
        let allowed = max(absolute, relative * abs(y))
        let ratio = x.isNaN || y.isNaN ? .infinity : abs(x - y) / allowed
        worst = max(worst, ratio)
    }
    return worst
}

/// Deterministic pseudo-random floats in [-scale, scale) for tests.
func testValues(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var state = seed &+ 0x9E37_79B9_7F4A_7C15
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
}

/// The folder of this test process's scratch folders, removed with everything in it when the process
/// exits (a run of the suite left 25 folders in /tmp each time). A crashed run leaves its folder.
private let scratchRoot: URL = {
    atexit { try? FileManager.default.removeItem(at: scratchRootPath()) }
    return scratchRootPath()
}()

/// `scratchRoot`'s path, from the process id alone: atexit's handler is a C function and captures nothing.
private func scratchRootPath() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("recur-tests-\(getpid())")
}

/// A new folder for one test's files. Tests run in parallel, so two tests never share a path.
func scratchDirectory() throws -> URL {
    let directory = scratchRoot.appendingPathComponent(UUID().uuidString)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

/// Writes `contents` to a file called `name` in a new folder; returns its path.
func temporaryFile(_ name: String, _ contents: String) throws -> String {
    let path = try scratchDirectory().appendingPathComponent(name).path
    try contents.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
