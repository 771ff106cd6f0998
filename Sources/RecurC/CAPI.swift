// The C API of Include/recur.h: @_cdecl functions over the engine. Every function checks what C
// lets a caller get wrong (NULL, ranks, shapes, dtypes, counts that do not fit Int) before the
// engine sees it, and turns every RecurError into a status plus this thread's last error.
// recur_last_error and recur_abi_version live in C (Sources/CRecurAPI).
import CRecurAPI
import CRecurKernels
import Recur

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Errors

/// Records `error` as this thread's last error and returns its status.
private func failure(_ error: RecurError) -> recur_status {
    error.message.withCString { recur_api_set_last_error($0) }
    return recur_status(rawValue: numericCast(error.kind.rawValue))
}

/// Runs `body` and reports its outcome as a status; a thrown error becomes the last error.
private func reporting(_ body: () throws(RecurError) -> Void) -> recur_status {
    do {
        try body()
        return RECUR_OK
    } catch {
        return failure(error)
    }
}

private func invalidArgument(_ message: String) -> RecurError { RecurError(.invalidArgument, message) }

/// `pointer` itself, or an invalid-argument error saying which parameter is NULL. `parameter` is
/// formatted only for the error: a call names the input it checks without formatting it each time.
private func nonNull<T>(_ pointer: T?, _ parameter: @autoclosure () -> String) throws(RecurError) -> T {
    guard let pointer else { throw invalidArgument("\(parameter()) is NULL") }
    return pointer
}

/// A size_t count as Int; counts above Int.max cannot describe real memory.
private func count(_ value: UInt, _ parameter: String) throws(RecurError) -> Int {
    guard let n = Int(exactly: value) else { throw invalidArgument("\(parameter) is \(value), above \(Int.max)") }
    return n
}

/// A C string parameter as a Swift string; NULL and invalid UTF-8 are errors.
private func string(_ pointer: UnsafePointer<CChar>?, _ parameter: String) throws(RecurError) -> String {
    guard let text = String(validatingCString: try nonNull(pointer, parameter)) else {
        throw invalidArgument("\(parameter) is not valid UTF-8")
    }
    return text
}

// MARK: - Handles

/// recur_session: one stream's state. C callers use a session from one thread at a time.
private final class SessionHandle {
    var session: Session

    init(_ session: Session) { self.session = session }
}

/// Hands one retained reference to C; `release` gives it back.
private func retained(_ object: AnyObject) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(object).toOpaque())
}

/// The object behind a handle, borrowed for the call (C holds the reference).
private func object<T: AnyObject>(_ handle: OpaquePointer?, _ parameter: String, as type: T.Type) throws(RecurError) -> T {
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(try nonNull(handle, parameter))).takeUnretainedValue()
}

private func release<T: AnyObject>(_ handle: OpaquePointer?, as type: T.Type) {
    guard let handle else { return }
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).release()
}

private func model(_ handle: OpaquePointer?) throws(RecurError) -> Model {
    try object(handle, "model", as: Model.self)
}

/// recur_result: the outputs copied into one allocation, laid out as recur_result_tensors promises:
/// their recur_tensor descriptions first, then their names, then their data in order, each tensor's
/// at an address that is a multiple of `dataAlignment`. So the pointers handed to C stay where they are
/// until recur_result_free, a caller may view all the data as one block, and a result costs one
/// malloc rather than two per tensor.
private final class ResultHandle {
    /// [count] descriptions at the start of the allocation; `free(tensors)` frees it all.
    let tensors: UnsafeMutablePointer<recur_tensor>
    let count: Int

    /// [count] bytes of each tensor's data.
    private let byteCounts: [Int]

    private static let dataAlignment = 64

    /// A result with room for tensors of these names, types and shapes, their data not yet written;
    /// out of memory is an error, and so is a rank above recur_tensor's 8 (the engine's outputs have
    /// rank 1 ... 3).
    init(layout: [(name: String, dtype: DType, shape: [Int])]) throws(RecurError) {
        if let wide = layout.first(where: { $0.shape.count > 8 }) {
            throw RecurError(.internal, "output '\(wide.name)' has rank \(wide.shape.count), above 8")
        }
        let names = layout.map { Array($0.name.utf8CString) }
        let byteCounts = layout.map { $0.shape.reduce($0.dtype.byteSize, *) }
        let descriptionBytes = layout.count * MemoryLayout<recur_tensor>.stride
        let headerBytes = descriptionBytes + names.reduce(0) { $0 + $1.count }
        // malloc, not aligned_alloc: glibc then reuses a large result's pages from one run to the next
        // (with aligned_alloc, test_run_memory.py's passes faulted 160 pages in each).
        // Room for aligning the first tensor's data, each tensor's padding, and one byte that keeps an
        // empty last tensor's pointer inside the allocation. The shapes are a model's outputs for a
        // request it accepted, whose buffers fit in memory, so these sums cannot overflow.
        let size = headerBytes + Self.dataAlignment - 1 + byteCounts.reduce(0) { $0 + Self.aligned($1) } + 1
        guard let block = malloc(size) else {
            throw RecurError(.outOfMemory, "cannot allocate a result of \(size) bytes")
        }
        let tensors = block.bindMemory(to: recur_tensor.self, capacity: layout.count)
        var nameCursor = block + descriptionBytes
        var data = block + Self.aligned(Int(bitPattern: block) + headerBytes) - Int(bitPattern: block)
        for (index, entry) in layout.enumerated() {
            names[index].withUnsafeBytes { UnsafeMutableRawBufferPointer(start: nameCursor, count: $0.count).copyMemory(from: $0) }
            let name = nameCursor.bindMemory(to: CChar.self, capacity: names[index].count)
            nameCursor += names[index].count
            var tensor = recur_tensor()
            tensor.name = UnsafePointer(name)
            tensor.rank = Int32(entry.shape.count)
            withUnsafeMutableBytes(of: &tensor.shape) { shape in
                for (axis, size) in entry.shape.enumerated() {
                    shape.storeBytes(of: Int64(size), toByteOffset: axis * 8, as: Int64.self)
                }
            }
            switch entry.dtype {
            case .float32: tensor.dtype = RECUR_F32
            case .int32: tensor.dtype = RECUR_I32
            case .int64: tensor.dtype = RECUR_I64
            }
            tensor.data = data
            (tensors + index).initialize(to: tensor)
            data += Self.aligned(byteCounts[index])
        }
        self.tensors = tensors
        self.count = layout.count
        self.byteCounts = byteCounts
    }

    /// Where tensor `index`'s data goes.
    func data(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: tensors[index].data, count: byteCounts[index])
    }

    /// Copies `outputs` into a new result.
    static func copying(_ outputs: [NamedTensor]) throws(RecurError) -> ResultHandle {
        let result = try ResultHandle(layout: outputs.map { ($0.name, $0.tensor.dtype, $0.tensor.shape) })
        for (index, output) in outputs.enumerated() { result.write(output.tensor, at: index) }
        return result
    }

    /// Copies `tensor`, of tensor `index`'s type and shape, into its place.
    func write(_ tensor: Tensor, at index: Int) {
        switch tensor.storage {
        case .float32(let values): values.withUnsafeBytes { copyBytes($0, to: data(index)) }
        case .int32(let values): values.withUnsafeBytes { copyBytes($0, to: data(index)) }
        case .int64(let values): values.withUnsafeBytes { copyBytes($0, to: data(index)) }
        }
    }

    /// `bytes` rounded up to a multiple of `dataAlignment`.
    private static func aligned(_ bytes: Int) -> Int { (bytes + dataAlignment - 1) / dataAlignment * dataAlignment }

    deinit { free(tensors) }
}

/// Hands `outputs` to C as a new recur_result in *out. C then has its copies, so the buffers of
/// `outputs` and of `inputs` (the engine's copies of the caller's) serve the next call.
private func deliver(_ outputs: [NamedTensor], of inputs: [String: Tensor], to out: UnsafeMutablePointer<OpaquePointer?>) throws(RecurError) {
    out.pointee = retained(try ResultHandle.copying(outputs))
    for tensor in inputs.values { ReusedFloats.give(tensor) }
    for output in outputs { ReusedFloats.give(output.tensor) }
}

// MARK: - Input tensors

/// The caller's `inputs` as engine tensors (copied), each checked against the recur_tensor rules; with
/// `borrowing`, float32 "input" data at a float's alignment is left where it is, to be read in place
/// during the call, and returned apart instead.
private func engineTensors(_ inputs: UnsafePointer<recur_tensor>?, _ n: UInt, borrowing: Bool = false)
    throws(RecurError) -> (tensors: [String: Tensor], borrowed: BorrowedFeatures?) {
    let n = try count(n, "n_inputs")
    guard n > 0 else { return ([:], nil) }
    var tensors: [String: Tensor] = [:]
    var borrowed: BorrowedFeatures?
    for (i, tensor) in UnsafeBufferPointer(start: try nonNull(inputs, "inputs"), count: n).enumerated() {
        guard let name = String(validatingCString: try nonNull(tensor.name, "inputs[\(i)].name")) else {
            throw invalidArgument("inputs[\(i)].name is not valid UTF-8")
        }
        guard tensors[name] == nil, name != "input" || borrowed == nil else { throw invalidArgument("inputs[\(i)]: '\(name)' is given twice") }
        let (shape, elements) = try checkedShape(tensor, "inputs[\(i)] '\(name)'")
        if borrowing, name == "input", tensor.dtype == RECUR_F32,
           Int(bitPattern: tensor.data) % MemoryLayout<Float>.alignment == 0 {
            let values = UnsafeBufferPointer(start: tensor.data?.assumingMemoryBound(to: Float.self), count: elements)
            borrowed = BorrowedFeatures(values, shape: shape)
        } else {
            tensors[name] = try engineTensor(tensor, shape: shape, elements: elements, "inputs[\(i)] '\(name)'")
        }
    }
    return (tensors, borrowed)
}

/// The tensor's shape and element count, checked against the recur_tensor rules and the engine's
/// limits. `what` names the tensor in errors, formatted only for one.
private func checkedShape(_ tensor: recur_tensor, _ what: @autoclosure () -> String) throws(RecurError) -> (shape: [Int], elements: Int) {
    guard (0...8).contains(tensor.rank) else { throw invalidArgument("\(what()): rank \(tensor.rank) is outside 0 … 8") }
    let shape = withUnsafeBytes(of: tensor.shape) { raw in
        (0..<Int(tensor.rank)).map { Int(raw.load(fromByteOffset: $0 * 8, as: Int64.self)) }
    }
    guard let elements = Tensor.elementCount(shape) else {
        throw invalidArgument("\(what()): shape \(shape) has a negative dimension or more elements than fit in memory")
    }
    // Checked before copying, so a huge shape is an error rather than an allocation that traps.
    guard elements <= Model.maxElementsPerBuffer else {
        throw RecurError(.outOfMemory, "\(what()): shape \(shape) has \(elements) elements, above the limit of \(Model.maxElementsPerBuffer)")
    }
    guard elements == 0 || tensor.data != nil else { throw invalidArgument("\(what()): data is NULL for \(elements) elements") }
    return (shape, elements)
}

/// A copy of the tensor, whose shape and element count `checkedShape` gave.
private func engineTensor(_ tensor: recur_tensor, shape: [Int], elements: Int, _ what: @autoclosure () -> String) throws(RecurError) -> Tensor {
    let data = UnsafeRawPointer(tensor.data)
    switch tensor.dtype {
    // Floats into a buffer kept from an earlier call when there is one (ReusedFloats).
    case RECUR_F32: return try Tensor(shape: shape, storage: .float32(copied(data, into: ReusedFloats.take(elements))))
    case RECUR_I32: return try Tensor(shape: shape, storage: .int32(copied(data, into: uninitialized(elements))))
    case RECUR_I64: return try Tensor(shape: shape, storage: .int64(copied(data, into: uninitialized(elements))))
    default:
        throw invalidArgument("\(what()): dtype \(tensor.dtype.rawValue) is not a recur_dtype (RECUR_F32 = 1, RECUR_I32 = 2, RECUR_I64 = 3)")
    }
}

/// `values`, overwritten with as many values of `T` from caller memory with any alignment.
private func copied<T: BitwiseCopyable>(_ data: UnsafeRawPointer?, into values: consuming [T]) -> [T] {
    guard let data, !values.isEmpty else { return values }
    values.withUnsafeMutableBytes { copyBytes(UnsafeRawBufferPointer(start: data, count: $0.count), to: $0) }
    return values
}

/// `count` values of `T` with unspecified contents.
private func uninitialized<T: BitwiseCopyable>(_ count: Int) -> [T] {
    [T](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
}


// MARK: - Library

@_cdecl("recur_version")
public func recurVersionString() -> UnsafePointer<CChar> {
    UnsafeRawPointer(recurVersionLiteral.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("recur_kernels")
public func recurKernels() -> UnsafePointer<CChar> {
    rk_kernels_name()
}

@_cdecl("recur_release_kept_buffers")
public func recurReleaseKeptBuffers() -> UInt {
    UInt(ReusedFloats.releaseAll())
}

// MARK: - Models

@_cdecl("recur_model_load")
public func recurModelLoad(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> recur_status {
    reporting { () throws(RecurError) in
        let path = try string(path, "path")
        let out = try nonNull(out, "out")
        out.pointee = retained(try Model(path: path))
    }
}

@_cdecl("recur_model_load_memory")
public func recurModelLoadMemory(_ data: UnsafeRawPointer?, _ size: UInt, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> recur_status {
    reporting { () throws(RecurError) in
        let size = try count(size, "size")
        let out = try nonNull(out, "out")
        guard size == 0 || data != nil else { throw invalidArgument("data is NULL for \(size) bytes") }
        out.pointee = retained(try Model(borrowing: UnsafeRawBufferPointer(start: data, count: size)))
    }
}

@_cdecl("recur_model_free")
public func recurModelFree(_ model: OpaquePointer?) {
    release(model, as: Model.self)
}

@_cdecl("recur_model_describe")
public func recurModelDescribe(_ handle: OpaquePointer?, _ jsonOut: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> recur_status {
    reporting { () throws(RecurError) in
        let model = try model(handle)
        let jsonOut = try nonNull(jsonOut, "json_out")
        guard let text = strdup(model.describe().serialized()) else {
            throw RecurError(.outOfMemory, "cannot allocate the description")
        }
        jsonOut.pointee = text
    }
}

@_cdecl("recur_string_free")
public func recurStringFree(_ string: UnsafeMutablePointer<CChar>?) {
    free(string)
}

@_cdecl("recur_model_encode")
public func recurModelEncode(_ handle: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ ids: UnsafeMutablePointer<Int64>?,
                             _ capacity: UInt, _ outLen: UnsafeMutablePointer<UInt>?) -> recur_status {
    reporting { () throws(RecurError) in
        let model = try model(handle)
        let text = try string(text, "text")
        let capacity = try count(capacity, "capacity")
        let outLen = try nonNull(outLen, "out_len")
        guard capacity == 0 || ids != nil else { throw invalidArgument("ids is NULL with capacity \(capacity)") }
        guard let tokenizer = model.tokenizer else {
            throw RecurError(.unsupported, "model has no tokenizer and vocab to encode text with")
        }
        let encoded = tokenizer.encode(text)
        for (i, id) in encoded.prefix(capacity).enumerated() { ids?[i] = Int64(id) }
        outLen.pointee = UInt(encoded.count)
    }
}

// MARK: - Inference

@_cdecl("recur_model_run")
public func recurModelRun(_ handle: OpaquePointer?, _ inputs: UnsafePointer<recur_tensor>?, _ nInputs: UInt,
                          _ out: UnsafeMutablePointer<OpaquePointer?>?) -> recur_status {
    reporting { () throws(RecurError) in
        let model = try model(handle)
        let out = try nonNull(out, "out")
        // The input read in place: 100 KiB a call not copied at LSTM-64, B = 8, T = 100, I = 32.
        let (tensors, borrowed) = try engineTensors(inputs, nInputs, borrowing: true)
        let request = try RunRequest(model: model, inputs: tensors, borrowed: borrowed)
        // The result laid out first, so that the model writes its output there rather than into an
        // array of its own to be copied: 200 KiB a call at LSTM-64, B = 8, T = 100.
        let layout = model.outputLayout(request)
        let result = try ResultHandle(layout: layout)
        let states = try model.run(request, outputInto: result.data(0))
        guard states.elementsEqual(layout.dropFirst(), by: { $0.name == $1.name && $0.tensor.shape == $1.shape }) else {
            throw RecurError(.internal, "the model returned states \(states.map(\.name)), not those it declares")
        }
        for (index, state) in states.enumerated() { result.write(state.tensor, at: index + 1) }
        out.pointee = retained(result)
        for tensor in tensors.values { ReusedFloats.give(tensor) }
    }
}

// MARK: - Results

@_cdecl("recur_result_count")
public func recurResultCount(_ handle: OpaquePointer?) -> UInt {
    guard let result = try? object(handle, "result", as: ResultHandle.self) else { return 0 }
    return UInt(result.count)
}

@_cdecl("recur_result_get")
public func recurResultGet(_ handle: OpaquePointer?, _ index: UInt, _ out: UnsafeMutablePointer<recur_tensor>?) -> recur_status {
    reporting { () throws(RecurError) in
        let result = try object(handle, "result", as: ResultHandle.self)
        let out = try nonNull(out, "out")
        guard index < UInt(result.count) else {
            throw invalidArgument("index \(index) is outside the result's \(result.count) tensors")
        }
        out.pointee = result.tensors[Int(index)]
    }
}

@_cdecl("recur_result_find")
public func recurResultFind(_ handle: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<recur_tensor>?) -> recur_status {
    reporting { () throws(RecurError) in
        let result = try object(handle, "result", as: ResultHandle.self)
        let name = try nonNull(name, "name")
        let out = try nonNull(out, "out")
        let tensors = UnsafeBufferPointer(start: result.tensors, count: result.count)
        guard let index = tensors.firstIndex(where: { strcmp($0.name, name) == 0 }) else {
            let names = tensors.map { String(cString: $0.name) }.joined(separator: ", ")
            throw invalidArgument("no result tensor named '\(String(cString: name))'; the result has \(names)")
        }
        out.pointee = tensors[index]
    }
}

@_cdecl("recur_result_tensors")
public func recurResultTensors(_ handle: OpaquePointer?, _ tensors: UnsafeMutablePointer<UnsafePointer<recur_tensor>?>?,
                               _ count: UnsafeMutablePointer<UInt>?) -> recur_status {
    reporting { () throws(RecurError) in
        let result = try object(handle, "result", as: ResultHandle.self)
        let tensors = try nonNull(tensors, "tensors")
        let count = try nonNull(count, "count")
        tensors.pointee = UnsafePointer(result.tensors)
        count.pointee = UInt(result.count)
    }
}

@_cdecl("recur_result_free")
public func recurResultFree(_ result: OpaquePointer?) {
    release(result, as: ResultHandle.self)
}

// MARK: - Sessions

@_cdecl("recur_session_open")
public func recurSessionOpen(_ handle: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> recur_status {
    reporting { () throws(RecurError) in
        let model = try model(handle)
        let out = try nonNull(out, "out")
        out.pointee = retained(SessionHandle(try Session(model: model)))
    }
}

@_cdecl("recur_session_step")
public func recurSessionStep(_ handle: OpaquePointer?, _ inputs: UnsafePointer<recur_tensor>?, _ nInputs: UInt,
                             _ out: UnsafeMutablePointer<OpaquePointer?>?) -> recur_status {
    reporting { () throws(RecurError) in
        let session = try object(handle, "session", as: SessionHandle.self)
        let out = try nonNull(out, "out")
        let tensors = try engineTensors(inputs, nInputs).tensors
        let outputs = try session.session.step(tensors)
        try deliver(outputs, of: tensors, to: out)
    }
}

@_cdecl("recur_session_reset")
public func recurSessionReset(_ handle: OpaquePointer?) -> recur_status {
    reporting { () throws(RecurError) in
        try object(handle, "session", as: SessionHandle.self).session.reset()
    }
}

@_cdecl("recur_session_free")
public func recurSessionFree(_ session: OpaquePointer?) {
    release(session, as: SessionHandle.self)
}

// MARK: - Generation

@_cdecl("recur_generate")
public func recurGenerate(_ handle: OpaquePointer?, _ prompt: UnsafePointer<Int32>?, _ promptLength: UInt,
                          _ sampling: UnsafePointer<recur_sampling>?, _ stop: UnsafePointer<Int32>?, _ stopCount: UInt,
                          _ maxTokens: UInt, _ outTokens: UnsafeMutablePointer<Int32>?,
                          _ outLen: UnsafeMutablePointer<UInt>?) -> recur_status {
    reporting { () throws(RecurError) in
        let model = try model(handle)
        let promptLength = try count(promptLength, "prompt_len")
        let stopCount = try count(stopCount, "n_stop")
        let maxTokens = try count(maxTokens, "max_tokens")
        let outLen = try nonNull(outLen, "out_len")
        guard promptLength == 0 || prompt != nil else { throw invalidArgument("prompt is NULL with prompt_len \(promptLength)") }
        guard stopCount == 0 || stop != nil else { throw invalidArgument("stop is NULL with n_stop \(stopCount)") }
        // Copied before the engine checks anything: refuse what could not be allocated.
        guard max(promptLength, stopCount) <= Model.maxElementsPerBuffer else {
            throw RecurError(.outOfMemory, "prompt_len \(promptLength) or n_stop \(stopCount) is above the limit of \(Model.maxElementsPerBuffer)")
        }
        guard maxTokens == 0 || outTokens != nil else { throw invalidArgument("out_tokens is NULL with max_tokens \(maxTokens)") }
        let options = sampling.map {
            SamplingOptions(temperature: $0.pointee.temperature, topK: Int($0.pointee.top_k),
                            topP: $0.pointee.top_p, seed: $0.pointee.seed)
        } ?? SamplingOptions(temperature: 0, topK: 0, topP: 1, seed: 0)
        let tokens = try model.generate(
            prompt: UnsafeBufferPointer(start: prompt, count: promptLength).map(Int.init),
            maxTokens: maxTokens, sampling: options,
            stop: Set(UnsafeBufferPointer(start: stop, count: stopCount).map(Int.init)))
        guard tokens.count <= maxTokens else {
            throw RecurError(.internal, "generation returned \(tokens.count) tokens for max_tokens \(maxTokens)")
        }
        // Generated ids are below the vocabulary size, which the format keeps within Int32.
        for (i, token) in tokens.enumerated() { outTokens?[i] = Int32(truncatingIfNeeded: token) }
        outLen.pointee = UInt(tokens.count)
    }
}

// MARK: - Plugins

@_cdecl("recur_plugin_load")
public func recurPluginLoad(_ path: UnsafePointer<CChar>?) -> recur_status {
    reporting { () throws(RecurError) in
        try LayerRegistry.shared.loadPlugin(path: try string(path, "path"))
    }
}
