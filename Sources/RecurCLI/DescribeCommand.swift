import ArgumentParser
import Recur

struct DescribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe", abstract: "Print a model's architecture, parameter count and shapes.")

    @Argument(help: "Model file (.safetensors).") var model: String
    @Flag(help: "Print the description as JSON.") var json = false

    func run() throws {
        let loaded: Model
        do { loaded = try Model(path: model) } catch { throw CommandFailure(error) }
        if json {
            print(loaded.describe().serialized())
            return
        }
        print(summary(of: loaded, path: model))
    }
}

/// A readable summary: one line per layer with its output shape, then inputs and outputs.
func summary(of model: Model, path: String) -> String {
    let description = model.describe()
    var lines = ["\(model.architecture.name ?? path): \(model.parameterCount) parameters"]
    switch model.architecture.input {
    case .tokens(let v): lines.append("  input   token ids [B, T], vocabulary \(v)")
    case .features(let s): lines.append("  input   float32 [B, T, \(s)]")
    }
    for config in model.architecture.layers {
        let keys = config.fields.keys.filter { $0 != "name" && $0 != "type" }.sorted()
        let settings = keys.map { "\($0)=\(config.fields[$0]?.serialized() ?? "")" }.joined(separator: " ")
        lines.append("  layer   \(config.name): \(config.type) \(settings)")
    }
    for (title, key) in [("inputs", "inputs"), ("outputs", "outputs")] {
        let entries = description[key]?.objectValue ?? [:]
        for name in entries.keys.sorted() {
            let dtype = entries[name]?["dtype"]?.stringValue ?? "?"
            let shape = (entries[name]?["shape"]?.arrayValue ?? []).map { $0.stringValue ?? $0.serialized() }
            lines.append("  \(title == "inputs" ? "in " : "out")     \(name): \(dtype) [\(shape.joined(separator: ", "))]")
        }
    }
    lines.append("  stream  \(model.canStream ? "yes" : "no (bidirectional)"), generate \(model.canGenerate ? "yes" : "no")")
    if let labels = model.architecture.labels { lines.append("  labels  \(labels.joined(separator: ", "))") }
    return lines.joined(separator: "\n")
}
