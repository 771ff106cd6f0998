import Foundation
import Recur
import Testing

/// The committed example models (examples/train.sh) load as they are and do their job on text
/// written here, through the engine's own tokenizer.
@Suite struct TrainingExamplesTests {
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples").path

    /// Runs token ids of `texts` through `model`; returns the output values and the lengths.
    private func run(_ model: Model, _ texts: [String]) throws -> (values: [Float], steps: Int) {
        let tokenizer = try #require(model.tokenizer)
        let encoded = texts.map(tokenizer.encode)
        let steps = encoded.map(\.count).max() ?? 1
        var ids = [Int64](repeating: 0, count: texts.count * steps)
        for (b, row) in encoded.enumerated() { for (t, id) in row.enumerated() { ids[b * steps + t] = Int64(id) } }
        let output = try model.run(["input": try .int64(ids, shape: [texts.count, steps]),
                                    "lengths": try .int64(encoded.map { Int64($0.count) }, shape: [texts.count])])[0].tensor
        return (try #require(output.floats), steps)
    }

    @Test func sentimentFollowsWordOrder() throws {
        let model = try Model(path: Self.examples + "/sentiment.safetensors")
        let labels = try #require(model.architecture.labels)
        let cases = [("the food was good , not bad", "pos"), ("the food was bad , not good", "neg"),
                     ("the plot was not great but dull", "neg"), ("the plot was not dull but great", "pos")]
        let (probabilities, _) = try run(model, cases.map(\.0))
        for (b, (text, label)) in cases.enumerated() {
            let row = Array(probabilities[(b * labels.count)..<((b + 1) * labels.count)])
            let best = row.indices.max { row[$0] < row[$1] } ?? 0
            #expect(labels[best] == label, "\(text)")
        }
    }

    @Test func taggerTellsNounFromVerbByContext() throws {
        let model = try Model(path: Self.examples + "/tagger.safetensors")
        let tags = try #require(model.architecture.labels)
        let (logProbabilities, steps) = try run(model, ["we book the light", "the light slept near my book"])
        func tagged(_ b: Int, _ count: Int) -> [String] {
            (0..<count).map { t in
                let row = Array(logProbabilities[((b * steps + t) * tags.count)..<((b * steps + t + 1) * tags.count)])
                return tags[row.indices.max { row[$0] < row[$1] } ?? 0]
            }
        }
        #expect(tagged(0, 4) == ["PRON", "VERB", "DET", "NOUN"])
        #expect(tagged(1, 6) == ["DET", "NOUN", "VERB", "ADP", "DET", "NOUN"])
    }

    @Test func charsModelGeneratesWords() throws {
        let model = try Model(path: Self.examples + "/chars.safetensors")
        #expect(model.canGenerate)
        let (logits, steps) = try run(model, ["The old sailo"])
        // After "sailo" the model must expect "r".
        let vocabulary = try #require(model.architecture.vocabulary)
        let width = vocabulary.count
        let last = Array(logits[((steps - 1) * width)..<(steps * width)])
        #expect(vocabulary[last.indices.max { last[$0] < last[$1] } ?? 0] == "r")
    }
}
