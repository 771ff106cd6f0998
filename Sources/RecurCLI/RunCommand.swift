import ArgumentParser
import Recur

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a model on tensors from a safetensors file.",
        discussion: """
            The input file holds tensors named as in the model format: "input", optional "lengths", \
            optional initial states "L.h0"/"L.c0". Other tensors (e.g. "expected.*") are ignored. \
            Outputs ("output", "L.h_n", ...) are summarised, and written with --output.
            """)

    @Argument(help: "Model file (.safetensors).") var model: String
    @Option(help: "Safetensors file with the inputs.") var input: String
    @Option(help: "Write the outputs to this safetensors file.") var output: String?

    func run() throws {
        do { try execute() } catch { throw CommandFailure(error) }
    }

    private func execute() throws(RecurError) {
        let loaded = try Model(path: model)
        let file = try SafeTensorsFile(path: input)
        let accepted = Set(["input", "lengths"] + loaded.stateInputs.map(\.name))
        var inputs: [String: Tensor] = [:]
        for entry in file.entries where accepted.contains(entry.name) {
            inputs[entry.name] = try file.tensor(entry)
        }
        let outputs = try loaded.run(inputs)
        for named in outputs { print(tensorSummary(named)) }
        if let output {
            try SafeTensorsWriter.write(outputs.map { ($0.name, $0.tensor) }, to: output)
            print("wrote \(outputs.count) tensors to \(output)")
        }
    }
}

/// "name  float32 [2, 5, 3]  min … max …  first values …"
func tensorSummary(_ named: NamedTensor) -> String {
    let t = named.tensor
    let values: [Double] = t.floats.map { $0.map(Double.init) } ?? (t.integers ?? []).map(Double.init)
    let head = values.prefix(6).map { String(format4($0)) }.joined(separator: ", ")
    let range = values.isEmpty ? "" : "  min \(format4(values.min() ?? 0))  max \(format4(values.max() ?? 0))"
    return "\(named.name)  \(t.dtype.rawValue) \(t.shape)\(range)  [\(head)\(values.count > 6 ? ", …" : "")]"
}

/// A number with 4 significant decimals, without Foundation's formatters.
func format4(_ x: Double) -> String {
    guard x.isFinite else { return "\(x)" }
    return "\((x * 10_000).rounded() / 10_000)"
}
