/// Every failure of the engine: a kind that callers branch on, and a message for people that names
/// what was wrong (the tensor, key or field, the expected and the found value).
public struct RecurError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Kinds keep the numbering of the C API's `recur_status` (Include/recur.h); never renumber.
    public enum Kind: Int32, Sendable, CaseIterable {
        /// A caller mistake independent of the model: NULL, bad rank, capacity too small.
        case invalidArgument = 1
        /// The file cannot be read.
        case io = 2
        /// The model file is malformed or inconsistent.
        case format = 3
        /// Input shape, dtype or values do not fit the model.
        case invalidInput = 4
        /// Valid, but not supported (a session on a bidirectional model, generation on a classifier).
        case unsupported = 5
        case outOfMemory = 6
        case `internal` = 7

        /// The wire protocol's error code for this kind (`protocol.md`).
        public var wireCode: String {
            switch self {
            case .invalidArgument: "bad_request"
            case .io: "not_found"
            case .format: "invalid_input"
            case .invalidInput: "invalid_input"
            case .unsupported: "unsupported"
            // Inputs whose buffers would not fit in memory: a limit of the machine, not a bug.
            case .outOfMemory: "too_large"
            case .internal: "internal"
            }
        }
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    static func format(_ message: String) -> RecurError { RecurError(.format, message) }
    static func invalidInput(_ message: String) -> RecurError { RecurError(.invalidInput, message) }
    static func unsupported(_ message: String) -> RecurError { RecurError(.unsupported, message) }
}
