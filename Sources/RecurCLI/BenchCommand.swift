import ArgumentParser
import CRecurKernels
import Recur

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `recur bench`: times whole forward passes of a model on random inputs.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time forward passes of a model on random inputs of a given batch and length.",
        discussion: """
            Prints the median, fastest and 90th-percentile wall time of one forward pass over the \
            whole batch, after warm-up runs. With --json, one line {"model", "batch", "steps", \
            "runs", "median_ms", "min_ms", "p90_ms", "cpu_ms", "kernels"}; \
            cpu_ms is the process's CPU time per pass over all threads, a steadier figure on a busy machine.
            """)

    @Argument(help: "Model file (.safetensors).") var model: String
    @Option(help: "Sequences per pass (B).") var batch = 1
    @Option(help: "Steps per sequence (T).") var steps = 100
    @Option(help: "Timed passes.") var runs = 50
    @Option(help: "Untimed passes first.") var warmup = 5
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws {
        guard (1...1 << 20).contains(batch), (1...1 << 20).contains(steps) else {
            throw ValidationError("--batch and --steps must be in 1 … 1048576")
        }
        guard (1...100_000).contains(runs), (0...100_000).contains(warmup) else {
            throw ValidationError("--runs must be in 1 … 100000 and --warmup in 0 … 100000")
        }
    }

    func run() throws {
        do { try execute() } catch { throw CommandFailure(error) }
    }

    private func execute() throws(RecurError) {
        let loaded = try Model(path: model)
        let inputs = ["input": try randomInput(for: loaded)]
        for _ in 0..<warmup { _ = try loaded.run(inputs) }
        var times: [Double] = []
        let cpuStart = seconds(CLOCK_PROCESS_CPUTIME_ID)
        for _ in 0..<runs {
            let start = seconds(CLOCK_MONOTONIC)
            _ = try loaded.run(inputs)
            times.append((seconds(CLOCK_MONOTONIC) - start) * 1e3)
        }
        let cpu = (seconds(CLOCK_PROCESS_CPUTIME_ID) - cpuStart) * 1e3 / Double(runs)
        times.sort()
        let (median, fastest, p90) = (times[times.count / 2], times[0], times[min(times.count - 1, times.count * 9 / 10)])
        let kernels = String(cString: rk_kernels_name())
        if json {
            print(#"{"model": "\#(model)", "batch": \#(batch), "steps": \#(steps), "runs": \#(runs), "median_ms": \#(format4(median)), "min_ms": \#(format4(fastest)), "p90_ms": \#(format4(p90)), "cpu_ms": \#(format4(cpu)), "kernels": "\#(kernels)"}"#)
        } else {
            print("\(model) B=\(batch) T=\(steps): median \(format4(median)) ms, min \(format4(fastest)) ms, p90 \(format4(p90)) ms over \(runs) runs; \(format4(cpu)) ms CPU time per pass (all threads); \(kernels) kernels")
        }
    }

    /// Features uniform in [-1, 1), or token ids spread over the vocabulary: [B, T(, size)].
    private func randomInput(for model: Model) throws(RecurError) -> Tensor {
        var generator = SystemRandomNumberGenerator()
        switch model.architecture.input {
        case .features(let size):
            guard let count = Tensor.elementCount([batch, steps, size]), count <= Model.maxElementsPerBuffer else {
                throw RecurError(.outOfMemory, "input [\(batch), \(steps), \(size)] is too large")
            }
            return try .float32((0..<count).map { _ in Float.random(in: -1..<1, using: &generator) }, shape: [batch, steps, size])
        case .tokens(let vocabulary):
            let count = batch * steps
            return try .int32((0..<count).map { _ in Int32.random(in: 0..<Int32(clamping: vocabulary), using: &generator) }, shape: [batch, steps])
        }
    }
}

private func seconds(_ clock: clockid_t) -> Double {
    var now = timespec()
    clock_gettime(clock, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}
