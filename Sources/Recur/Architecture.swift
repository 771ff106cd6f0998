/// The architecture document of a model file (`__metadata__["recur"]`), checked.
public struct Architecture: Sendable {
    /// The format version this reader understands.
    public static let formatVersion = 1

    public enum Input: Sendable, Equatable {
        /// Token ids [B, T], int32 or int64, each in [0, vocabularySize).
        case tokens(vocabularySize: Int)
        /// float32 [B, T, size].
        case features(size: Int)
    }

    /// The document as written, unknown keys included.
    public let json: JSONValue
    public let name: String?
    public let input: Input
    public let layers: [LayerConfig]
    public let labels: [String]?
    public let vocabulary: [String]?
    public let tokenizer: Tokenizer.Configuration?

    public init(parsing text: String) throws(RecurError) {
        let json: JSONValue
        do {
            json = try JSONValue.parse(text)
        } catch {
            throw RecurError.format("architecture (__metadata__[\"recur\"]) is \(error.message)")
        }
        try self.init(json: json)
    }

    public init(json: JSONValue) throws(RecurError) {
        func fail(_ message: String) -> RecurError { .format("architecture: \(message)") }
        guard case .object(let root) = json else { throw fail("not a JSON object") }
        self.json = json
        guard let format = root["format"]?.intValue else { throw fail("format must be an integer, found \(root["format"]?.serialized() ?? "nothing")") }
        guard format <= Architecture.formatVersion else {
            throw fail("format \(format) is newer than this reader's version \(Architecture.formatVersion); upgrade Recur")
        }
        guard format >= 1 else { throw fail("format must be ≥ 1, found \(format)") }
        if let name = root["name"], name.stringValue == nil { throw fail("name must be a string") }
        name = root["name"]?.stringValue

        guard let inputObject = root["input"]?.objectValue else { throw fail("input must be an object") }
        switch inputObject["kind"]?.stringValue {
        case "tokens":
            guard let v = inputObject["vocab_size"]?.intValue, v >= 1, v <= Int(Int32.max) else {
                throw fail("input.vocab_size must be an integer in 1 … \(Int32.max), found \(inputObject["vocab_size"]?.serialized() ?? "nothing")")
            }
            input = .tokens(vocabularySize: v)
        case "features":
            guard let s = inputObject["size"]?.intValue, s >= 1, s <= 1 << 40 else {
                throw fail("input.size must be a positive integer, found \(inputObject["size"]?.serialized() ?? "nothing")")
            }
            input = .features(size: s)
        default:
            throw fail("input.kind must be \"tokens\" or \"features\", found \(inputObject["kind"]?.serialized() ?? "nothing")")
        }

        guard let layerList = root["layers"]?.arrayValue, !layerList.isEmpty else { throw fail("layers must be a non-empty array") }
        var seen = Set<String>()
        var layers: [LayerConfig] = []
        for (i, entry) in layerList.enumerated() {
            guard case .object(let fields) = entry else { throw fail("layers[\(i)] is not an object") }
            guard let name = fields["name"]?.stringValue, !name.isEmpty, !name.contains(".") else {
                throw fail("layers[\(i)].name must be a non-empty string without '.', found \(fields["name"]?.serialized() ?? "nothing")")
            }
            guard seen.insert(name).inserted else { throw fail("layer name '\(name)' is used twice") }
            guard let type = fields["type"]?.stringValue else { throw fail("layer '\(name)': type must be a string") }
            layers.append(LayerConfig(name: name, type: type, fields: fields))
        }
        self.layers = layers

        labels = try Architecture.strings(root["labels"], "labels")
        vocabulary = try Architecture.strings(root["vocab"], "vocab")
        if let t = root["tokenizer"] {
            tokenizer = try Tokenizer.Configuration(json: t)
        } else {
            tokenizer = nil
        }
    }

    private static func strings(_ value: JSONValue?, _ key: String) throws(RecurError) -> [String]? {
        guard let value else { return nil }
        guard let array = value.arrayValue else { throw RecurError.format("architecture: \(key) must be a list of strings") }
        var out: [String] = []
        for item in array {
            guard let s = item.stringValue else { throw RecurError.format("architecture: \(key) must be a list of strings") }
            out.append(s)
        }
        return out
    }
}
