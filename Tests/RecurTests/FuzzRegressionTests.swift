import Foundation
import Recur
import Testing

/// The model files in fuzz/regressions/model that once crashed the loader (found by the `model`
/// fuzz target or by reading the code), replayed without instrumentation: each must now load or be
/// refused with a format error that says what was wrong, never stop the process.
@Suite struct FuzzRegressionTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fuzz/regressions").path

    static func inputs(_ target: String) -> [String] {
        let folder = directory + "/" + target
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted().map { folder + "/" + $0 }
    }

    static func bytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test func regressionFilesAreThere() {
        #expect(Self.inputs("model").count >= 2, "no files in \(Self.directory)/model")
    }

    @Test(arguments: inputs("model"))
    func modelInput(_ path: String) throws {
        do {
            let model = try Model(bytes: try Self.bytes(path))
            _ = model.describe().serialized()
        } catch let error as RecurError {
            #expect(error.kind == .format || error.kind == .outOfMemory, "\(path): \(error.kind) \(error.message)")
            #expect(!error.message.isEmpty)
        }
    }
}
