import Recur
import Testing

@Suite struct GenerationTests {
    static let model: Model? = try? GoldenCase("char_lm").model

    /// Greedy generation equals feeding the prompt and taking arg-max step by step with plain runs.
    @Test func greedyFollowsTheArgMaxOfWholeRuns() throws {
        let model = try #require(Self.model)
        let prompt = [3, 1, 4]
        let generated = try model.generate(prompt: prompt, maxTokens: 6, sampling: SamplingOptions(temperature: 0))
        var sequence = prompt
        for _ in 0..<6 {
            let y = try #require(try model.run(["input": try .int64(sequence.map(Int64.init), shape: [1, sequence.count])])[0].tensor.floats)
            let last = Array(y.suffix(12))
            sequence.append(last.indices.max { last[$0] < last[$1] }!)
        }
        #expect(generated == Array(sequence.dropFirst(prompt.count)))
    }

    @Test func sameSeedSameTokensOtherSeedOtherTokens() throws {
        let model = try #require(Self.model)
        let options = SamplingOptions(temperature: 1.5, seed: 42)
        let a = try model.generate(prompt: [1, 2], maxTokens: 40, sampling: options)
        #expect(a.count == 40)
        #expect(try model.generate(prompt: [1, 2], maxTokens: 40, sampling: options) == a)
        var other = options
        other.seed = 43
        #expect(try model.generate(prompt: [1, 2], maxTokens: 40, sampling: other) != a)
        #expect(a.allSatisfy { (0..<12).contains($0) })
    }

    @Test func topKOfOneIsGreedy() throws {
        let model = try #require(Self.model)
        let greedy = try model.generate(prompt: [5], maxTokens: 10, sampling: SamplingOptions(temperature: 0))
        let topOne = try model.generate(prompt: [5], maxTokens: 10, sampling: SamplingOptions(temperature: 2, topK: 1, seed: 9))
        let tinyP = try model.generate(prompt: [5], maxTokens: 10, sampling: SamplingOptions(temperature: 2, topP: 1e-6, seed: 9))
        #expect(topOne == greedy)
        #expect(tinyP == greedy)
    }

    @Test func topKRestrictsTheCandidates() throws {
        let model = try #require(Self.model)
        // With top_k = 2 every token is one of the two most likely after its context.
        let prompt = [7]
        let generated = try model.generate(prompt: prompt, maxTokens: 15, sampling: SamplingOptions(temperature: 5, topK: 2, seed: 3))
        var sequence = prompt
        for token in generated {
            let y = try #require(try model.run(["input": try .int64(sequence.map(Int64.init), shape: [1, sequence.count])])[0].tensor.floats)
            let last = Array(y.suffix(12))
            let topTwo = last.indices.sorted { last[$0] > last[$1] }.prefix(2)
            #expect(topTwo.contains(token))
            sequence.append(token)
        }
    }

    @Test func stopTokenEndsGenerationAndIsNotReturned() throws {
        let model = try #require(Self.model)
        let free = try model.generate(prompt: [2], maxTokens: 20, sampling: SamplingOptions(temperature: 0))
        let stopAt = try #require(free.dropFirst(2).first)
        let stopped = try model.generate(prompt: [2], maxTokens: 20, sampling: SamplingOptions(temperature: 0), stop: [stopAt])
        #expect(stopped == Array(free.prefix(while: { $0 != stopAt })))
        #expect(try model.generate(prompt: [2], maxTokens: 0).isEmpty)
    }

    @Test func badRequestsAreRefused() throws {
        let model = try #require(Self.model)
        #expect(throws: RecurError.self) { try model.generate(prompt: [], maxTokens: 3) }
        #expect(throws: RecurError.self) { try model.generate(prompt: [12], maxTokens: 3) }
        #expect(throws: RecurError.self) { try model.generate(prompt: [-1], maxTokens: 3) }
        #expect(throws: RecurError.self) { try model.generate(prompt: [1], maxTokens: -1) }
        #expect(throws: RecurError.self) { try model.generate(prompt: [1], maxTokens: 3, sampling: SamplingOptions(temperature: -1)) }
        #expect(throws: RecurError.self) { try model.generate(prompt: [1], maxTokens: 3, sampling: SamplingOptions(topP: 0)) }
        #expect(throws: RecurError.self) { try model.generate(prompt: [1], maxTokens: 3, sampling: SamplingOptions(topK: -2)) }
    }

    @Test func classifierCannotGenerate() throws {
        let model = try GoldenCase("bilstm_classifier").model
        #expect(!model.canGenerate)
        let error = #expect(throws: RecurError.self) { try model.generate(prompt: [1], maxTokens: 3) }
        #expect(error?.kind == .unsupported)
    }
}

@Suite struct TokenizerTests {
    @Test func wordsKeepPunctuationApart() {
        let words = Tokenizer.split("Good, not BAD... it's 42!", .init(kind: .word, lowercase: true))
        #expect(words == ["good", ",", "not", "bad", ".", ".", ".", "it's", "42", "!"])
    }

    @Test func charactersAreUnicodeScalars() {
        #expect(Tokenizer.split("aé b", .init(kind: .char)) == ["a", "é", " ", "b"])
    }

    @Test func unknownTokensBecomeTheUnknownID() {
        let tokenizer = Tokenizer(.init(kind: .word, unknownID: 1), vocabulary: ["<pad>", "<unk>", "good", "bad"])
        #expect(tokenizer.encode("good bad ugly good") == [2, 3, 1, 2])
    }
}

@Suite struct JSONTests {
    @Test func roundTripsThroughText() throws {
        let text = #"{"a":[1,-2.5,1e-05,true,null],"b":{"c":"x\"y\n\u00e9\ud83d\ude00"}}"#
        let value = try JSONValue.parse(text)
        #expect(value["a"]?.arrayValue?.count == 5)
        #expect(value["a"]?.arrayValue?[2].doubleValue == 1e-5)
        #expect(value["b"]?["c"]?.stringValue == "x\"y\né😀")
        #expect(try JSONValue.parse(value.serialized()) == value)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "01x", "\"\\q\"", "[1] 2", "nul", "\"\u{1}\"", "{\"a\":1,}", "-", "1.", "\"\\ud800\""])
    func refusesMalformedText(_ text: String) {
        #expect(throws: RecurError.self) { try JSONValue.parse(text) }
    }

    @Test func serializesCompactTextWithSortedKeysAndEscapes() {
        let value = JSONValue.object([
            "s": .string("q\"b\\n\n\r\t\u{1}\u{1f}é😀"), "b": .int(-12),
            "a": .array([.null, .bool(true), .bool(false), .int(0), .int(Int.min), .int(Int.max), .double(-0.5), .double(.nan)]),
            "": .object([:]),
        ])
        let expected = #"{"":{},"a":[null,true,false,0,-9223372036854775808,9223372036854775807,-0.5,null],"b":-12,"s":"q\"b\\n\n\r\t\u0001\u001fé😀"}"#
        #expect(value.serialized() == expected)
        #expect(value.serializedBytes() == Array(expected.utf8))
    }

    @Test func integersParseExactlyAtEveryLength() throws {
        for text in ["0", "-0", "7", "-7", "999999999999999999", "-999999999999999999", "1000000000000000000",
                     "9223372036854775807", "-9223372036854775808"] {
            #expect(try JSONValue.parse(text) == .int(Int(text)!), "\(text)")
        }
        #expect(try JSONValue.parse("9223372036854775808") == .double(9223372036854775808))
        #expect(try JSONValue.parse("-12.5e1") == .double(-125))
    }

    @Test func stringsWithAndWithoutEscapes() throws {
        #expect(try JSONValue.parse(#""plain é""#) == .string("plain é"))
        #expect(try JSONValue.parse(#""abc\ndef\u00e9\"""#) == .string("abc\ndefé\""))
        #expect(try JSONValue.parse(#"{"k\u0041":"v"}"#) == .object(["kA": .string("v")]))
        #expect(throws: RecurError.self) { try JSONValue.parse([0x22, 0xFF, 0x22]) }  // not UTF-8
        #expect(throws: RecurError.self) { try JSONValue.parse([0x22, 0x61, 0x0A, 0x22]) }  // a raw newline
        #expect(throws: RecurError.self) { try JSONValue.parse([0x22, 0x61, 0x62]) }  // unterminated
    }

    @Test func randomValuesRoundTrip() throws {
        var random = SplitMix64(seed: 7)
        func below(_ n: Int) -> Int { Int(random.next() % UInt64(n)) }
        let alphabet: [Character] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{0}", "\u{1f}", "é", "€", "😀"]
        func string() -> String { String((0..<below(8)).map { _ in alphabet[below(alphabet.count)] }) }
        func value(_ depth: Int) -> JSONValue {
            switch below(depth > 3 ? 5 : 7) {
            case 0: return .null
            case 1: return .bool(below(2) == 1)
            case 2: return .int(Int(bitPattern: UInt(random.next())) >> below(64))
            case 3: return .double(Double(bitPattern: random.next() & 0x7FEF_FFFF_FFFF_FFFF) * (below(2) == 1 ? -1 : 1))
            case 4: return .string(string())
            case 5: return .array((0..<below(5)).map { _ in value(depth + 1) })
            default: return .object(Dictionary((0..<below(5)).map { _ in (string(), value(depth + 1)) }, uniquingKeysWith: { a, _ in a }))
            }
        }
        for _ in 0..<500 {
            let original = value(0)
            #expect(try JSONValue.parse(original.serializedBytes()) == original, "\(original.serialized())")
        }
    }

    @Test func refusesHostileNesting() {
        #expect(throws: RecurError.self) { try JSONValue.parse(String(repeating: "[", count: 100_000)) }
    }
}
