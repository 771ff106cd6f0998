import ArgumentParser
import Dispatch
import Foundation
import Recur
import RecurTraining
import Synchronization

/// Set by SIGINT; training polls it after every step.
private let interruptRequested = Atomic<Bool>(false)

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model by backpropagation through time (docs/training.md).",
        discussion: """
            Data by task: lm — UTF-8 text; classify — lines LABEL<TAB>TEXT; tag — lines \
            TOKENS<TAB>TAGS (one tag per token of the model's tokenizer). For classify and tag, a \
            safetensors file with x float32 [N, T, F], y int64 [N] or [N, T] and optional lengths [N] \
            may be given instead. "auto" sizes in the architecture are filled from the data. \
            Ctrl-C stops cleanly: --out then holds the best model so far (by validation loss, else the last).
            """)

    @Option(help: "Architecture JSON (model-format.md); \"auto\" allowed for vocab_size, num_embeddings, the last out_features.")
    var arch: String
    @Option(help: "lm, classify or tag.") var task: String
    @Option(help: "Training data.") var data: String
    @Option(help: "Validation data (same form as --data).") var valid: String?
    @Option(help: "Where to write the model file.") var out: String
    @Option(help: "Held-out data (same form as --data) to score the written model on at the end.") var test: String?
    @Option(help: "Passes over the training data (default: at least 10 and at least 2000 steps; with --valid, ending once validation stops improving).")
    var epochs: Int?
    @Option(name: .customLong("batch-size"), help: "Sequences (lm: parallel streams) per step.") var batchSize = 32
    @Option(help: "Learning rate (default 0.002 for adam, 0.05 for sgd).") var lr: Float?
    @Option(help: "adam or sgd (with momentum 0.9).") var optimizer = "adam"
    @Option(help: "Clip gradients to this global norm; 0 turns clipping off.") var clip: Float = 5
    @Option(help: "lm: steps per truncated-BPTT chunk (state carries across chunks).") var bptt = 64
    @Option(help: "Seed for initialisation, shuffling and dropout.") var seed: UInt64 = 0
    @Option(name: .customLong("init"),
            help: "auto (chrono for classify, else pytorch), chrono (PyTorch's init, then gate biases that remember up to the longest sequence) or pytorch (PyTorch's init exactly).")
    var initialization = "auto"
    @Option(help: "Learning rate over the planned steps: cosine (decays to a tenth) or constant.") var schedule = "cosine"

    func run() throws {
        do { try execute() } catch { throw CommandFailure(error) }
    }

    /// `value` of `option` as the case it names, or an error listing the `choices`.
    private static func parse<Choice: RawRepresentable<String>>(_ value: String, _ option: String, _ choices: String)
        throws(RecurError) -> Choice
    {
        guard let choice = Choice(rawValue: value) else {
            throw RecurError(.invalidArgument, "\(option) must be \(choices), found '\(value)'")
        }
        return choice
    }

    private func execute() throws(RecurError) {
        var options = TrainingOptions(task: try Self.parse(task, "--task", "lm, classify or tag"))
        options.optimizer = try Self.parse(optimizer, "--optimizer", "adam or sgd")
        options.initialization = try Self.parse(initialization, "--init", "auto, chrono or pytorch")
        options.schedule = try Self.parse(schedule, "--schedule", "cosine or constant")
        options.epochs = epochs
        options.batchSize = batchSize
        options.learningRate = lr
        options.clip = clip
        options.bptt = bptt
        options.seed = seed
        let directory = URL(fileURLWithPath: out).deletingLastPathComponent().path
        guard FileManager.default.isWritableFile(atPath: directory) else {
            throw RecurError(.io, "\(out): cannot write into \(directory)")  // before training, not after an epoch
        }
        guard let text = FileManager.default.contents(atPath: arch) else { throw RecurError(.io, "\(arch): cannot read the architecture") }
        let json = try JSONValue.parse(Array(text))
        let trainer = try Trainer(architecture: json, trainPath: data, validPath: valid, options: options)
        let arch = trainer.architecture
        let size = arch.vocabulary.map { "vocabulary \($0.count)" } ?? "features"
        let labels = arch.labels.map { ", \($0.count) labels" } ?? ""
        printError("training \(arch.name ?? self.arch): \(trainer.parameterCount) parameters, \(size)\(labels), \(trainer.trainingTokens) training tokens")

        signal(SIGINT) { _ in
            interruptRequested.store(true, ordering: .relaxed)
            signal(SIGINT, SIG_DFL)  // a second Ctrl-C ends the process at once
        }
        var progress = ProgressLine()
        let started = DispatchTime.now().uptimeNanoseconds
        var steps = 0
        let summary = try trainer.run(outputPath: out, report: { event in
            if case .step = event { steps += 1 }
            progress.show(event)
        }, shouldStop: { interruptRequested.load(ordering: .relaxed) })
        progress.finish()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        if summary.interrupted { printError("interrupted after \(summary.epochsCompleted) complete epoch(s)") }
        let validation = summary.validLoss.map { "; validation loss \(format4($0)), accuracy \(format4(summary.validAccuracy ?? 0))" } ?? ""
        printError("\(summary.epochsCompleted) epochs, \(steps) steps in \(format4(seconds)) s (\(format4(seconds * 1000 / Double(max(steps, 1)))) ms/step, fastest \(format4(summary.fastestStepSeconds * 1000)) ms)\(validation)")
        // The file must load exactly as every other part of Recur loads it.
        let model = try Model(path: out)
        print("wrote \(out) (\(model.parameterCount) parameters)")
        if let test {
            let (loss, accuracy) = try trainer.score(dataPath: test)
            print("test \(test): loss \(format4(loss)) (\(format4(loss / log(2.0))) bits per token), accuracy \(format4(accuracy))")
        }
    }
}

/// The live progress line: rewritten in place on a terminal, one line per tenth of an epoch otherwise.
struct ProgressLine {
    private let terminal = isatty(STDERR_FILENO) != 0
    private var open = false
    /// When the terminal line was last rewritten: at most ten rewrites a second.
    private var shownAt: UInt64 = 0

    mutating func show(_ event: TrainingEvent) {
        switch event {
        case .step(let epoch, let epochs, let step, let steps, let loss, let rate, let left):
            let line = "epoch \(epoch)/\(epochs)  step \(step)/\(steps)  loss \(format4(loss))  \(Int(rate)) tok/s  \(duration(left)) left"
            if terminal {
                let now = DispatchTime.now().uptimeNanoseconds
                guard step == steps || now - shownAt >= 100_000_000 else { return }
                shownAt = now
                FileHandle.standardError.write(Data(("\r" + line + "\u{1B}[K").utf8))
                open = true
            } else if step == steps || step % max(1, steps / 10) == 0 {
                printError(line)
            }
        case .epoch(let epoch, let trainLoss, let trainAccuracy, let validLoss, let validAccuracy, let saved):
            finish()
            var line = "epoch \(epoch): train loss \(format4(trainLoss)) accuracy \(format4(trainAccuracy))"
            if let validLoss, let validAccuracy {
                line += "  valid loss \(format4(validLoss)) (\(format4(validLoss / log(2.0))) bits/token) accuracy \(format4(validAccuracy))"
            }
            printError(line + (saved ? "  (saved)" : ""))
        }
    }

    mutating func finish() {
        if open { FileHandle.standardError.write(Data("\n".utf8)) }
        open = false
    }

    private func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
