import Foundation
import Recur

/// What the model learns (training.md).
public enum TrainingTask: String, Sendable, CaseIterable {
    /// Next token at every step of a text stream.
    case lm
    /// One label per sequence (lines `LABEL<TAB>TEXT`, or features with y [N]).
    case classify
    /// One tag per token (lines `TOKENS<TAB>TAGS`, or features with y [N, T]).
    case tag
}

/// One training sequence: token ids or feature rows, and its targets.
struct Example: Sendable {
    /// [length] token ids (token input).
    var ids: [Int32]
    /// [length, F] (feature input).
    var features: [Float]
    let length: Int
    /// [1] (classify) or [length] (tag).
    var targets: [Int32]
}

/// Training or validation data, already in ids.
enum Dataset: Sendable {
    /// Separate sequences (classify, tag).
    case sequences([Example])
    /// One token stream (lm).
    case stream([Int32])

    var tokenCount: Int {
        switch self {
        case .sequences(let examples): examples.reduce(0) { $0 + $1.length }
        case .stream(let ids): ids.count
        }
    }
}

/// Text training data before ids: token strings and target strings per line.
struct TextCorpus {
    /// Per sequence (classify, tag) or one element holding the whole stream (lm).
    var tokens: [[String]]
    /// Per sequence: [label] (classify) or one tag per token (tag); empty for lm.
    var targets: [[String]]
}

enum DataReader {
    /// Reads a UTF-8 file as text, naming the file on failure.
    static func text(_ path: String) throws(RecurError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RecurError(.io, "\(path): cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RecurError(.invalidInput, "\(path): not valid UTF-8 text")
        }
        return text
    }

    /// Splits text data of `task` into tokens with the model's tokenizer.
    static func corpus(_ path: String, task: TrainingTask, tokenizer: Tokenizer.Configuration) throws(RecurError) -> TextCorpus {
        let text = try text(path)
        if task == .lm {
            let tokens = Tokenizer.split(text, tokenizer)
            guard tokens.count >= 2 else { throw RecurError(.invalidInput, "\(path): an lm needs at least 2 tokens of text, found \(tokens.count)") }
            return TextCorpus(tokens: [tokens], targets: [])
        }
        var corpus = TextCorpus(tokens: [], targets: [])
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            if line.allSatisfy(\.isWhitespace) { continue }
            let where_ = "\(path):\(number + 1)"
            guard let tab = line.firstIndex(of: "\t") else {
                throw RecurError(.invalidInput, "\(where_): no tab; \(task == .classify ? "expected LABEL<TAB>TEXT" : "expected TOKENS<TAB>TAGS")")
            }
            let left = String(line[..<tab]), right = String(line[line.index(after: tab)...])
            switch task {
            case .classify:
                let label = left.trimmingCharacters(in: .whitespaces)
                guard !label.isEmpty else { throw RecurError(.invalidInput, "\(where_): empty label") }
                let tokens = Tokenizer.split(right, tokenizer)
                guard !tokens.isEmpty else { throw RecurError(.invalidInput, "\(where_): the text has no tokens") }
                corpus.tokens.append(tokens)
                corpus.targets.append([label])
            case .tag:
                let tokens = Tokenizer.split(left, tokenizer)
                let tags = right.split(whereSeparator: \.isWhitespace).map(String.init)
                guard !tokens.isEmpty else { throw RecurError(.invalidInput, "\(where_): no tokens") }
                guard tokens.count == tags.count else {
                    throw RecurError(.invalidInput, "\(where_): \(tokens.count) tokens (split by the model's \(tokenizer.kind.rawValue) tokenizer) but \(tags.count) tags")
                }
                corpus.tokens.append(tokens)
                corpus.targets.append(tags)
            case .lm:
                break
            }
        }
        guard !corpus.tokens.isEmpty else { throw RecurError(.invalidInput, "\(path): no examples") }
        return corpus
    }

    /// id 0 = "<pad>", id 1 = "<unk>", then tokens by decreasing frequency, ties by first appearance.
    /// `limit` caps the size (the architecture's explicit vocab_size).
    static func vocabulary(_ corpus: TextCorpus, limit: Int?) -> [String] {
        var counts: [String: (count: Int, first: Int)] = [:]
        var position = 0
        for sequence in corpus.tokens {
            for token in sequence {
                if let entry = counts[token] {
                    counts[token] = (entry.count + 1, entry.first)
                } else {
                    counts[token] = (1, position)
                }
                position += 1
            }
        }
        let ordered = counts.filter { $0.key != "<pad>" && $0.key != "<unk>" }
            .sorted { $0.value.count != $1.value.count ? $0.value.count > $1.value.count : $0.value.first < $1.value.first }
            .map(\.key)
        let vocabulary = ["<pad>", "<unk>"] + ordered
        return limit.map { Array(vocabulary.prefix($0)) } ?? vocabulary
    }

    /// Labels or tags, sorted (so the class order does not depend on line order).
    static func labels(_ corpus: TextCorpus) -> [String] {
        Array(Set(corpus.targets.joined())).sorted()
    }

    /// The corpus in ids. Unknown target names are an error naming them.
    static func dataset(_ corpus: TextCorpus, task: TrainingTask, vocabulary: [String], labels: [String], source: String) throws(RecurError) -> Dataset {
        var ids: [String: Int32] = [:]
        for (i, token) in vocabulary.enumerated() where ids[token] == nil { ids[token] = Int32(i) }
        let unknown: Int32 = 1
        if task == .lm { return .stream(corpus.tokens[0].map { ids[$0] ?? unknown }) }
        var labelIDs: [String: Int32] = [:]
        for (i, label) in labels.enumerated() { labelIDs[label] = Int32(i) }
        var examples: [Example] = []
        for (tokens, targets) in zip(corpus.tokens, corpus.targets) {
            var targetIDs: [Int32] = []
            for name in targets {
                guard let id = labelIDs[name] else {
                    throw RecurError(.invalidInput, "\(source): \(task == .classify ? "label" : "tag") '\(name)' is not one of the model's (known: \(labels.prefix(20).joined(separator: ", ")))")
                }
                targetIDs.append(id)
            }
            examples.append(Example(ids: tokens.map { ids[$0] ?? unknown }, features: [], length: tokens.count, targets: targetIDs))
        }
        return .sequences(examples)
    }

    /// Features data: `x` float32 [N, T, F], `y` int64 [N] (classify) or [N, T] (tag), optional `lengths` [N].
    static func features(_ path: String, task: TrainingTask, featureSize: Int) throws(RecurError) -> (Dataset, classes: Int) {
        let file = try SafeTensorsFile(path: path)
        guard let xEntry = file.entry("x"), let yEntry = file.entry("y") else {
            throw RecurError(.invalidInput, "\(path): features data needs tensors x [N, T, F] and y")
        }
        let x = try file.tensor(xEntry), y = try file.tensor(yEntry)
        guard x.shape.count == 3, let xs = x.floats else { throw RecurError(.invalidInput, "\(path): x must be float [N, T, F], found \(x.dtype.rawValue) \(x.shape)") }
        let (n, t, f) = (x.shape[0], x.shape[1], x.shape[2])
        guard n >= 1, t >= 1, f == featureSize else {
            throw RecurError(.invalidInput, "\(path): x is \(x.shape); the architecture's input.size is \(featureSize)")
        }
        let expectedY = task == .classify ? [n] : [n, t]
        guard y.shape == expectedY, let ys = y.integers else {
            throw RecurError(.invalidInput, "\(path): y must be integer \(expectedY) for \(task.rawValue), found \(y.dtype.rawValue) \(y.shape)")
        }
        var lengths = [Int](repeating: t, count: n)
        if let entry = file.entry("lengths") {
            let l = try file.tensor(entry)
            guard l.shape == [n], let values = l.integers else { throw RecurError(.invalidInput, "\(path): lengths must be integer [\(n)], found \(l.dtype.rawValue) \(l.shape)") }
            if let bad = values.firstIndex(where: { $0 < 1 || $0 > Int64(t) }) {
                throw RecurError(.invalidInput, "\(path): lengths[\(bad)] is \(values[bad]), outside 1 … \(t)")
            }
            lengths = values.map { Int($0) }
        }
        var examples: [Example] = []
        var classes = 0
        for i in 0..<n {
            let length = lengths[i]
            let targets: [Int64] = task == .classify ? [ys[i]] : Array(ys[(i * t)..<(i * t + length)])
            if let bad = targets.first(where: { $0 < 0 || $0 > Int64(Int32.max) }) {
                throw RecurError(.invalidInput, "\(path): y of sequence \(i) holds \(bad), not a class index ≥ 0")
            }
            classes = max(classes, Int(targets.max() ?? 0) + 1)
            examples.append(Example(ids: [], features: Array(xs[(i * t * f)..<((i * t + length) * f)]), length: length,
                                    targets: targets.map { Int32($0) }))
        }
        return (.sequences(examples), classes)
    }
}

/// Mini-batches of one epoch.
enum Batcher {
    /// Sequences shuffled, grouped by similar length (sorted within windows of 50 batches), the
    /// batches shuffled again. Deterministic for a generator state.
    static func epoch(_ examples: [Example], batchSize: Int, perStepTargets: Bool, featureWidth: Int, random: inout SplitMix64) -> [Batch] {
        var order = Array(examples.indices)
        shuffle(&order, &random)
        let window = batchSize * 50
        var groups: [[Int]] = []
        for start in stride(from: 0, to: order.count, by: window) {
            let sorted = order[start..<min(start + window, order.count)].sorted { examples[$0].length < examples[$1].length }
            for s in stride(from: 0, to: sorted.count, by: batchSize) { groups.append(Array(sorted[s..<min(s + batchSize, sorted.count)])) }
        }
        shuffle(&groups, &random)
        return groups.map { batch(examples, $0, perStepTargets: perStepTargets, featureWidth: featureWidth) }
    }

    /// Batches in data order, for evaluation.
    static func inOrder(_ examples: [Example], batchSize: Int, perStepTargets: Bool, featureWidth: Int) -> [Batch] {
        stride(from: 0, to: examples.count, by: batchSize).map {
            batch(examples, Array($0..<min($0 + batchSize, examples.count)), perStepTargets: perStepTargets, featureWidth: featureWidth)
        }
    }

    /// The `members` of `examples` padded to the longest; featureWidth 0 means token input.
    static func batch(_ examples: [Example], _ members: [Int], perStepTargets: Bool, featureWidth: Int) -> Batch {
        let steps = members.map { examples[$0].length }.max() ?? 1
        let B = members.count
        var result = Batch(batch: B, steps: steps, tokens: [], features: [], lengths: [], targets: [], initialStates: nil)
        let tokenInput = featureWidth == 0
        if tokenInput { result.tokens = [Int32](repeating: 0, count: B * steps) } else { result.features = [Float](repeating: 0, count: B * steps * featureWidth) }
        result.targets = [Int32](repeating: -1, count: perStepTargets ? B * steps : B)
        for (row, index) in members.enumerated() {
            let e = examples[index]
            result.lengths.append(e.length)
            if tokenInput {
                result.tokens.replaceSubrange((row * steps)..<(row * steps + e.length), with: e.ids)
            } else {
                result.features.replaceSubrange((row * steps * featureWidth)..<((row * steps + e.length) * featureWidth), with: e.features)
            }
            if perStepTargets {
                result.targets.replaceSubrange((row * steps)..<(row * steps + e.length), with: e.targets)
            } else {
                result.targets[row] = e.targets[0]
            }
        }
        return result
    }

    /// An lm stream cut into `streams` contiguous rows and chunks of `bptt` steps: batch j holds
    /// steps j·bptt … of every row, the target of each step is the next token of its row.
    static func streamChunks(_ ids: [Int32], streams: Int, bptt: Int) -> [Batch] {
        let rows = max(1, min(streams, (ids.count - 1) / 2))
        let rowLength = (ids.count - 1) / rows  // steps per row (each needs a next token)
        var batches: [Batch] = []
        for start in stride(from: 0, to: rowLength, by: bptt) {
            let steps = min(bptt, rowLength - start)
            var tokens: [Int32] = [], targets: [Int32] = []
            for r in 0..<rows {
                let base = r * rowLength + start
                tokens.append(contentsOf: ids[base..<(base + steps)])
                targets.append(contentsOf: ids[(base + 1)..<(base + steps + 1)])
            }
            batches.append(Batch(batch: rows, steps: steps, tokens: tokens, features: [], lengths: [Int](repeating: steps, count: rows),
                                 targets: targets, initialStates: nil))
        }
        return batches
    }

    static func shuffle<T>(_ values: inout [T], _ random: inout SplitMix64) {
        guard values.count > 1 else { return }
        for i in stride(from: values.count - 1, to: 0, by: -1) { values.swapAt(i, random.next(below: i + 1)) }
    }
}
