/// Text to token ids with a model's `tokenizer` and `vocab` (model-format.md; training.md).
///
/// `char` makes each Unicode scalar a token. `word` makes each maximal run of letters, digits,
/// `_` and `'` a token, and each other non-space character a token of its own, so "good, not bad"
/// is ["good", ",", "not", "bad"]. `lowercase` lowercases first. Unknown tokens become `unk_id`.
public struct Tokenizer: Sendable {
    public struct Configuration: Sendable, Equatable {
        public enum Kind: String, Sendable { case char, word }
        public var kind: Kind
        public var lowercase: Bool
        public var unknownID: Int

        public init(kind: Kind, lowercase: Bool = false, unknownID: Int = 1) {
            self.kind = kind
            self.lowercase = lowercase
            self.unknownID = unknownID
        }

        /// Parses the architecture's `tokenizer` object.
        public init(json: JSONValue) throws(RecurError) {
            guard let kind = json["kind"]?.stringValue.flatMap(Kind.init(rawValue:)) else {
                throw RecurError.format("architecture: tokenizer.kind must be \"char\" or \"word\", found \(json["kind"]?.serialized() ?? "nothing")")
            }
            if let value = json["lowercase"], value.boolValue == nil {
                throw RecurError.format("architecture: tokenizer.lowercase must be true or false, found \(value.serialized())")
            }
            if let value = json["unk_id"], (value.intValue ?? -1) < 0 {
                throw RecurError.format("architecture: tokenizer.unk_id must be a non-negative integer, found \(value.serialized())")
            }
            self.init(kind: kind, lowercase: json["lowercase"]?.boolValue ?? false, unknownID: json["unk_id"]?.intValue ?? 1)
        }

        public var json: JSONValue {
            .object(["kind": .string(kind.rawValue), "lowercase": .bool(lowercase), "unk_id": .int(unknownID)])
        }
    }

    public let configuration: Configuration
    private let ids: [String: Int]

    public init(_ configuration: Configuration, vocabulary: [String]) {
        self.configuration = configuration
        var ids: [String: Int] = [:]
        for (i, token) in vocabulary.enumerated() where ids[token] == nil { ids[token] = i }
        self.ids = ids
    }

    /// The text's tokens as strings, before vocabulary lookup.
    public static func split(_ text: String, _ configuration: Configuration) -> [String] {
        let text = configuration.lowercase ? text.lowercased() : text
        switch configuration.kind {
        case .char:
            return text.unicodeScalars.map { String($0) }
        case .word:
            var tokens: [String] = []
            var word = String.UnicodeScalarView()
            for u in text.unicodeScalars {
                if u.properties.isAlphabetic || u.properties.numericType != nil || u == "_" || u == "'" {
                    word.append(u)
                    continue
                }
                if !word.isEmpty { tokens.append(String(word)); word = String.UnicodeScalarView() }
                if !u.properties.isWhitespace { tokens.append(String(u)) }
            }
            if !word.isEmpty { tokens.append(String(word)) }
            return tokens
        }
    }

    public func encode(_ text: String) -> [Int] {
        Tokenizer.split(text, configuration).map { ids[$0] ?? configuration.unknownID }
    }
}
