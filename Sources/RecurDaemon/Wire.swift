import Recur

/// A failed request as the protocol reports it: a code of protocol.md and a message naming the field.
struct WireError: Error, Sendable {
    enum Code: String, Sendable, CaseIterable {
        case badRequest = "bad_request"
        case notFound = "not_found"
        case invalidInput = "invalid_input"
        case unsupported
        case busy
        case tooLarge = "too_large"
        case unauthorized
        case `internal`
    }

    let code: Code
    let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    init(_ error: RecurError) {
        code = Code(rawValue: error.kind.wireCode) ?? .internal
        message = error.message
    }
}

/// The configured limits on what one request may carry.
struct RequestLimits: Sendable {
    /// Elements of any one tensor.
    var maxTensorElements: Int
    /// Elements of all a request's tensors together.
    var maxRequestElements: Int
    /// T of an input, and prompt length + max_tokens for `generate`.
    var maxSteps: Int
    /// `max_tokens` of `generate`.
    var maxGenerateTokens: Int
}

/// A decoded request: what to do, and how to answer.
struct Request: Sendable {
    enum Operation: Sendable {
        case ping, models, stats
        case describe(model: String)
        case infer(model: String, inputs: [String: Tensor], outputs: [String]?)
        case sessionOpen(model: String)
        case sessionStep(session: String, inputs: [String: Tensor])
        case sessionReset(session: String)
        case sessionClose(session: String)
        case generate(model: String, prompt: [Int], maxTokens: Int, sampling: SamplingOptions, stop: Set<Int>)
        case load(model: String, path: String)
        case unload(model: String)
    }

    /// The wire protocol's version (protocol.md), answered by `ping`.
    static let protocolVersion = 1

    /// The op names of protocol.md, as `stats` counts them.
    static let operationNames = ["ping", "models", "stats", "describe", "infer", "session.open", "session.step",
                                 "session.reset", "session.close", "generate", "load", "unload"]

    let operation: Operation
    /// The request's `id`, echoed in the reply.
    let id: JSONValue?
    /// True when the reply should carry its tensors in binary frames.
    let binary: Bool

    var name: String {
        switch operation {
        case .ping: "ping"
        case .models: "models"
        case .stats: "stats"
        case .describe: "describe"
        case .infer: "infer"
        case .sessionOpen: "session.open"
        case .sessionStep: "session.step"
        case .sessionReset: "session.reset"
        case .sessionClose: "session.close"
        case .generate: "generate"
        case .load: "load"
        case .unload: "unload"
        }
    }

    /// The session the request works on, for ops that must not overlap on one session.
    var session: String? {
        switch operation {
        case .sessionStep(let s, _), .sessionReset(let s), .sessionClose(let s): s
        default: nil
        }
    }
}

/// What is known of a request even when it cannot be decoded: its op name (for `stats`) and `id`.
struct RequestHeader: Sendable {
    var op = "invalid"
    var id: JSONValue?
    var binary = false
}

/// Decodes one request: `frames[0]` the JSON header, the rest binary tensor payloads.
struct RequestDecoder {
    let limits: RequestLimits
    let header: [String: JSONValue]
    let frames: [[UInt8]]
    /// Which payload frames a tensor has referred to.
    private var used: Set<Int> = []
    private var elements = 0

    /// Decodes a whole request message; what is known of the header comes back even on failure,
    /// so the reply can echo the `id` and the failure can be counted under its op.
    static func decode(_ frames: [[UInt8]], limits: RequestLimits) -> (RequestHeader, Result<Request, WireError>) {
        let (info, header, headerError) = RequestDecoder.header(of: frames)
        if let headerError { return (info, .failure(headerError)) }
        var decoder = RequestDecoder(limits: limits, header: header ?? [:], frames: frames)
        do {
            return (info, .success(try decoder.decode(info)))
        } catch {
            return (info, .failure(error))
        }
    }

    /// Parses the header far enough to answer even a bad request with its `id` and `binary`.
    private static func header(of frames: [[UInt8]]) -> (RequestHeader, [String: JSONValue]?, WireError?) {
        var info = RequestHeader()
        guard let first = frames.first else { return (info, nil, WireError(.badRequest, "empty message: frame 0 must be the JSON header")) }
        let json: JSONValue
        do {
            json = try JSONValue.parse(first)
        } catch {
            return (info, nil, WireError(.badRequest, "frame 0 is not JSON: \(error.message)"))
        }
        guard case .object(let object) = json else {
            return (info, nil, WireError(.badRequest, "frame 0 must be a JSON object, found \(json.serialized().prefix(40))"))
        }
        info.id = object["id"]
        if let op = object["op"]?.stringValue, Request.operationNames.contains(op) { info.op = op }
        if let binary = object["binary"] {
            guard let flag = binary.boolValue else { return (info, object, WireError(.badRequest, "binary must be true or false")) }
            info.binary = flag
        }
        return (info, object, nil)
    }

    private init(limits: RequestLimits, header: [String: JSONValue], frames: [[UInt8]]) {
        self.limits = limits
        self.header = header
        self.frames = frames
    }

    private mutating func decode(_ info: RequestHeader) throws(WireError) -> Request {
        guard let opValue = header["op"] else { throw WireError(.badRequest, "missing field 'op'") }
        guard let op = opValue.stringValue else { throw WireError(.badRequest, "op must be a string, found \(opValue.serialized().prefix(40))") }
        let operation: Request.Operation
        switch op {
        case "ping": operation = .ping
        case "models": operation = .models
        case "stats": operation = .stats
        case "describe": operation = .describe(model: try string("model"))
        case "infer":
            operation = .infer(model: try string("model"), inputs: try tensors("inputs"), outputs: try optionalStrings("outputs"))
        case "session.open": operation = .sessionOpen(model: try string("model"))
        case "session.step": operation = .sessionStep(session: try string("session"), inputs: try tensors("inputs"))
        case "session.reset": operation = .sessionReset(session: try string("session"))
        case "session.close": operation = .sessionClose(session: try string("session"))
        case "generate": operation = try generate()
        case "load": operation = .load(model: try string("model"), path: try string("path"))
        case "unload": operation = .unload(model: try string("model"))
        default:
            throw WireError(.badRequest, "op '\(op.prefix(40))' is unknown; known ops: \(Request.operationNames.joined(separator: ", "))")
        }
        if let unused = (1..<max(frames.count, 1)).first(where: { !used.contains($0) }) {
            throw WireError(.badRequest, "frame \(unused) is not referred to by any tensor")
        }
        return Request(operation: operation, id: info.id, binary: info.binary)
    }

    private func string(_ key: String) throws(WireError) -> String {
        guard let value = header[key] else { throw WireError(.badRequest, "missing field '\(key)'") }
        guard let s = value.stringValue else { throw WireError(.badRequest, "\(key) must be a string, found \(value.serialized().prefix(40))") }
        guard !s.isEmpty else { throw WireError(.badRequest, "\(key) must not be empty") }
        return s
    }

    private func optionalStrings(_ key: String) throws(WireError) -> [String]? {
        guard let value = header[key] else { return nil }
        guard let items = value.arrayValue else { throw WireError(.badRequest, "\(key) must be a list of strings") }
        var out: [String] = []
        for (i, item) in items.enumerated() {
            guard let s = item.stringValue else { throw WireError(.badRequest, "\(key)[\(i)] must be a string") }
            out.append(s)
        }
        return out
    }

    private func integer(_ key: String, default fallback: Int? = nil) throws(WireError) -> Int {
        guard let value = header[key] else {
            if let fallback { return fallback }
            throw WireError(.badRequest, "missing field '\(key)'")
        }
        guard let i = value.intValue else { throw WireError(.badRequest, "\(key) must be an integer, found \(value.serialized().prefix(40))") }
        return i
    }

    private func number(_ key: String, default fallback: Double) throws(WireError) -> Double {
        guard let value = header[key] else { return fallback }
        guard let d = value.doubleValue else { throw WireError(.badRequest, "\(key) must be a number, found \(value.serialized().prefix(40))") }
        return d
    }

    private func integers(_ key: String, required: Bool) throws(WireError) -> [Int] {
        guard let value = header[key] else {
            if required { throw WireError(.badRequest, "missing field '\(key)'") }
            return []
        }
        guard let items = value.arrayValue else { throw WireError(.badRequest, "\(key) must be a list of integers") }
        var out: [Int] = []
        for (i, item) in items.enumerated() {
            guard let n = item.intValue else { throw WireError(.badRequest, "\(key)[\(i)] must be an integer, found \(item.serialized().prefix(40))") }
            out.append(n)
        }
        return out
    }

    private func generate() throws(WireError) -> Request.Operation {
        let model = try string("model")
        let prompt = try integers("prompt", required: true)
        let maxTokens = try integer("max_tokens")
        guard maxTokens >= 0 else { throw WireError(.badRequest, "max_tokens must be ≥ 0, found \(maxTokens)") }
        guard maxTokens <= limits.maxGenerateTokens else {
            throw WireError(.tooLarge, "max_tokens is \(maxTokens), over the limit of \(limits.maxGenerateTokens)")
        }
        guard prompt.count <= limits.maxSteps - maxTokens else {
            throw WireError(.tooLarge, "prompt (\(prompt.count) tokens) plus max_tokens (\(maxTokens)) is over the limit of \(limits.maxSteps) steps")
        }
        let seed = try integer("seed", default: 0)
        guard seed >= 0 else { throw WireError(.badRequest, "seed must be ≥ 0, found \(seed)") }
        let sampling = SamplingOptions(temperature: Float(try number("temperature", default: 1)),
                                       topK: try integer("top_k", default: 0),
                                       topP: Float(try number("top_p", default: 1)),
                                       seed: UInt64(seed))
        let stop = Set(try integers("stop", required: false))
        return .generate(model: model, prompt: prompt, maxTokens: maxTokens, sampling: sampling, stop: stop)
    }

    private mutating func tensors(_ key: String) throws(WireError) -> [String: Tensor] {
        guard let value = header[key] else { throw WireError(.badRequest, "missing field '\(key)'") }
        guard let object = value.objectValue else { throw WireError(.badRequest, "\(key) must be an object {name: tensor}") }
        var out: [String: Tensor] = [:]
        for name in object.keys.sorted() {
            out[name] = try tensor(object[name] ?? .null, field: "\(key).\(name)")
        }
        if let input = out["input"], input.shape.count >= 2, input.shape[1] > limits.maxSteps {
            throw WireError(.tooLarge, "\(key).input has \(input.shape[1]) steps, over the limit of \(limits.maxSteps)")
        }
        return out
    }

    private mutating func tensor(_ value: JSONValue, field: String) throws(WireError) -> Tensor {
        guard let object = value.objectValue else { throw WireError(.badRequest, "\(field) must be a tensor object {dtype, shape, data | frame}") }
        guard let dtypeName = object["dtype"]?.stringValue else { throw WireError(.badRequest, "\(field).dtype must be a string") }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw WireError(.badRequest, "\(field).dtype '\(dtypeName.prefix(20))' is not one of float32, int32, int64")
        }
        guard let shapeItems = object["shape"]?.arrayValue else { throw WireError(.badRequest, "\(field).shape must be a list of integers") }
        var shape: [Int] = []
        for (i, item) in shapeItems.enumerated() {
            guard let d = item.intValue, d >= 0 else { throw WireError(.badRequest, "\(field).shape[\(i)] must be an integer ≥ 0") }
            shape.append(d)
        }
        guard let count = Tensor.elementCount(shape), count <= limits.maxTensorElements else {
            throw WireError(.tooLarge, "\(field).shape \(shape) is over the limit of \(limits.maxTensorElements) elements per tensor")
        }
        let (total, overflow) = elements.addingReportingOverflow(count)
        elements = total
        guard !overflow, elements <= limits.maxRequestElements else {
            throw WireError(.tooLarge, "\(field): the request's tensors are over the limit of \(limits.maxRequestElements) elements in all")
        }
        let storage: Tensor.Storage
        switch (object["data"], object["frame"]) {
        case (.some, .some): throw WireError(.badRequest, "\(field) has both data and frame; give one")
        case (.none, .none): throw WireError(.badRequest, "\(field) needs data (inline) or frame (binary)")
        case (.some(let data), .none): storage = try inline(data, dtype: dtype, count: count, field: field)
        case (.none, .some(let frameValue)):
            guard let k = frameValue.intValue, k >= 1, k < frames.count else {
                throw WireError(.badRequest, "\(field).frame must be a frame number in 1 … \(frames.count - 1), found \(frameValue.serialized().prefix(20))")
            }
            guard used.insert(k).inserted else { throw WireError(.badRequest, "\(field).frame \(k) is already used by another tensor") }
            storage = try binary(frames[k], dtype: dtype, count: count, field: "\(field) (frame \(k))")
        }
        do {
            return try Tensor(shape: shape, storage: storage)
        } catch {
            throw WireError(.badRequest, "\(field): \(error.message)")
        }
    }

    private func binary(_ bytes: [UInt8], dtype: DType, count: Int, field: String) throws(WireError) -> Tensor.Storage {
        let (size, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, bytes.count == size else {
            throw WireError(.badRequest, "\(field) has \(bytes.count) bytes, the shape needs \(count) × \(dtype.byteSize)")
        }
        func load<T>(_: T.Type) -> [T] {
            [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                bytes.withUnsafeBytes { copyBytes($0, to: UnsafeMutableRawBufferPointer(buffer)) }
                initialized = count
            }
        }
        // The wire is little-endian, as every platform Recur builds for.
        switch dtype {
        case .float32: return .float32(load(Float.self))
        case .int32: return .int32(load(Int32.self))
        case .int64: return .int64(load(Int64.self))
        }
    }

    private func inline(_ data: JSONValue, dtype: DType, count: Int, field: String) throws(WireError) -> Tensor.Storage {
        var flat: [JSONValue] = []
        flat.reserveCapacity(count)
        func flatten(_ value: JSONValue) {
            guard case .array(let items) = value else { flat.append(value); return }
            for item in items { flatten(item) }
        }
        flatten(data)
        guard flat.count == count else {
            throw WireError(.badRequest, "\(field).data has \(flat.count) values, the shape needs \(count)")
        }
        switch dtype {
        case .float32:
            var values: [Float] = []
            values.reserveCapacity(count)
            for (i, v) in flat.enumerated() {
                guard let d = v.doubleValue else { throw WireError(.badRequest, "\(field).data[\(i)] must be a number, found \(v.serialized().prefix(20))") }
                values.append(Float(d))
            }
            return .float32(values)
        case .int32, .int64:
            var values: [Int64] = []
            values.reserveCapacity(count)
            let range = dtype == .int32 ? Int(Int32.min)...Int(Int32.max) : Int.min...Int.max
            for (i, v) in flat.enumerated() {
                guard let n = v.intValue, range.contains(n) else {
                    throw WireError(.badRequest, "\(field).data[\(i)] must be an \(dtype.rawValue) integer, found \(v.serialized().prefix(20))")
                }
                values.append(Int64(n))
            }
            return dtype == .int32 ? .int32(values.map { Int32($0) }) : .int64(values)
        }
    }
}

/// Builds replies: frame 0 the JSON header, then binary tensor frames when the request asked.
struct ReplyEncoder {
    let binary: Bool
    private(set) var frames: [[UInt8]] = []

    init(binary: Bool) {
        self.binary = binary
    }

    /// The tensor's header entry; in binary mode its bytes become the next frame.
    mutating func encode(_ tensor: Tensor) -> JSONValue {
        var entry: [String: JSONValue] = [
            "dtype": .string(tensor.dtype.rawValue),
            "shape": .array(tensor.shape.map { .int($0) }),
        ]
        if binary {
            func bytes<T>(_ values: [T]) -> [UInt8] {
                values.withUnsafeBytes { from in
                    [UInt8](unsafeUninitializedCapacity: from.count) { buffer, initialized in
                        copyBytes(from, to: UnsafeMutableRawBufferPointer(buffer))
                        initialized = from.count
                    }
                }
            }
            switch tensor.storage {
            case .float32(let v): frames.append(bytes(v))
            case .int32(let v): frames.append(bytes(v))
            case .int64(let v): frames.append(bytes(v))
            }
            entry["frame"] = .int(frames.count)
        } else {
            // Float32 widened to double prints the exact value, so it reads back bit for bit;
            // NaN and infinities, which JSON cannot express, come out as null.
            switch tensor.storage {
            case .float32(let v): entry["data"] = .array(v.map { .double(Double($0)) })
            case .int32(let v): entry["data"] = .array(v.map { .int(Int($0)) })
            case .int64(let v): entry["data"] = .array(v.map { .int(Int($0)) })
            }
        }
        return .object(entry)
    }

    /// The reply message: a success with `fields`, after the tensors encoded so far.
    static func success(id: JSONValue?, _ fields: [String: JSONValue], frames: [[UInt8]] = []) -> [[UInt8]] {
        var header = fields
        header["ok"] = .bool(true)
        if let id { header["id"] = id }
        return [JSONValue.object(header).serializedBytes()] + frames
    }

    static func failure(id: JSONValue?, _ error: WireError) -> [[UInt8]] {
        var header: [String: JSONValue] = [
            "ok": .bool(false),
            "error": .object(["code": .string(error.code.rawValue), "message": .string(error.message)]),
        ]
        if let id { header["id"] = id }
        return [JSONValue.object(header).serializedBytes()]
    }
}
