import Foundation
import Recur
import Testing

/// The committed example models (examples/train.sh) load as they are and do their job on text
/// written here, through the engine's own tokenizer.
@Suite struct TrainingExamplesTests {
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples").path

    @Test func sentimentFollowsWordOrder() throws {
        let model = try Model(path: Self.examples + "/sentiment.safetensors")
        let labels = try #require(model.architecture.labels)
        let cases = [("the food was good , not bad", "pos"), ("the food was bad , not good", "neg"),
                     ("the plot was not great but dull", "neg"), ("the plot was not dull but great", "pos")]
        let (probabilities, _) = try runTexts(model, cases.map(\.0))
        for (b, (text, label)) in cases.enumerated() {
            let row = Array(probabilities[(b * labels.count)..<((b + 1) * labels.count)])
            let best = row.indices.max { row[$0] < row[$1] } ?? 0
            #expect(labels[best] == label, "\(text)")
        }
    }

    @Test func taggerTellsNounFromVerbByContext() throws {
        let model = try Model(path: Self.examples + "/tagger.safetensors")
        let tags = try #require(model.architecture.labels)
        let (logProbabilities, steps) = try runTexts(model, ["we book the light", "the light slept near my book"])
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
        let (logits, steps) = try runTexts(model, ["The old sailo"])
        // After "sailo" the model must expect "r".
        let vocabulary = try #require(model.architecture.vocabulary)
        let width = vocabulary.count
        let last = Array(logits[((steps - 1) * width)..<(steps * width)])
        #expect(vocabulary[last.indices.max { last[$0] < last[$1] } ?? 0] == "r")
    }
}
