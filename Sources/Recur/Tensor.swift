/// A named value's element type, as the model format, the C API and the wire protocol spell it.
public enum DType: String, Sendable, CaseIterable {
    case float32, int32, int64

    public var byteSize: Int {
        switch self {
        case .float32, .int32: 4
        case .int64: 8
        }
    }
}

/// An n-dimensional row-major array owned by Swift: the currency of the engine's public API.
public struct Tensor: Sendable, Equatable {
    public enum Storage: Sendable, Equatable {
        case float32([Float])
        case int32([Int32])
        case int64([Int64])
    }

    public let shape: [Int]
    public let storage: Storage

    /// Creates a tensor; `shape`'s product must equal the element count.
    public init(shape: [Int], storage: Storage) throws(RecurError) {
        guard let count = Tensor.elementCount(shape) else {
            throw RecurError(.invalidArgument, "shape \(shape) has a negative or overflowing dimension")
        }
        let found: Int
        switch storage {
        case .float32(let v): found = v.count
        case .int32(let v): found = v.count
        case .int64(let v): found = v.count
        }
        guard found == count else {
            throw RecurError(.invalidArgument, "shape \(shape) needs \(count) elements, found \(found)")
        }
        self.shape = shape
        self.storage = storage
    }

    /// A float32 tensor; the caller guarantees `values.count` is the product of `shape`.
    init(floats values: [Float], shape: [Int]) {
        self.shape = shape
        self.storage = .float32(values)
    }

    public static func float32(_ values: [Float], shape: [Int]) throws(RecurError) -> Tensor {
        try Tensor(shape: shape, storage: .float32(values))
    }

    public static func int32(_ values: [Int32], shape: [Int]) throws(RecurError) -> Tensor {
        try Tensor(shape: shape, storage: .int32(values))
    }

    public static func int64(_ values: [Int64], shape: [Int]) throws(RecurError) -> Tensor {
        try Tensor(shape: shape, storage: .int64(values))
    }

    public var dtype: DType {
        switch storage {
        case .float32: .float32
        case .int32: .int32
        case .int64: .int64
        }
    }

    public var count: Int { shape.reduce(1, *) }

    /// The values as float32, or nil for integer tensors.
    public var floats: [Float]? {
        if case .float32(let v) = storage { return v }
        return nil
    }

    /// The values as Int64 for integer tensors, or nil for float tensors.
    public var integers: [Int64]? {
        switch storage {
        case .float32: nil
        case .int32(let v): v.map(Int64.init)
        case .int64(let v): v
        }
    }

    /// Product of `shape`, or nil when a dimension is negative or the product overflows `Int`.
    public static func elementCount(_ shape: [Int]) -> Int? {
        var total = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow else { return nil }
            total = p
        }
        return total
    }
}
