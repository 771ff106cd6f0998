// Fuzz target: the C API of librecur.so (Sources/RecurC), called as a C program would: NULL or
// valid pointers, any rank, dtype value and shape, names that are not UTF-8, counts up to SIZE_MAX,
// NaN sampling options. Every call must return a status (with a message when it fails) and write
// only to the memory it was given. A pointer is never given less memory than its size or shape
// says: that is the one rule C cannot check (recur.h).
import CRecurAPI
import Foundation
import Recur

/// The golden models through recur_model_load, once, in `goldenModels` order.
nonisolated(unsafe) let handles: [OpaquePointer] = goldenModels.map { entry in
    var handle: OpaquePointer?
    let status = recurModelLoad("\(goldenDirectory)/\(entry.name)/model.safetensors", &handle)
    check(status == RECUR_OK, "recur_model_load of \(entry.name) failed: \(String(cString: recur_last_error()))")
    return handle!
}

/// A pointer to `value`, or NULL when `null` says so: how C passes optional out parameters.
func pointer<T, R>(to value: inout T, null: Bool, _ body: (UnsafeMutablePointer<T>?) -> R) -> R {
    withUnsafeMutablePointer(to: &value) { body(null ? nil : $0) }
}

/// Checks a failed call left a message.
func failed(_ status: recur_status) {
    if status != RECUR_OK {
        check(strlen(recur_last_error()) > 0, "status \(status.rawValue) without a message")
    }
}

/// A C string from the fuzzer: any bytes but NUL, then NUL.
func cString(_ reader: inout ByteReader) -> [CChar] {
    (0..<Int(reader.byte() % 12)).map { _ in CChar(bitPattern: max(reader.byte(), 1)) } + [0]
}

/// Storage for fuzzed input tensors: names and data stay alive until the call returns.
struct TensorArguments {
    var names: [[CChar]] = []
    var buffers: [UnsafeMutableRawPointer?] = []
    var tensors: [recur_tensor] = []

    init(_ reader: inout ByteReader, model: Model) {
        let known = ["input", "lengths", "bogus"] + model.stateInputs.map(\.name)
        for _ in 0..<Int(reader.byte() % 4) {
            let name = reader.byte() < 200 ? Array(known[Int(reader.byte()) % known.count].utf8CString) : cString(&reader)
            var tensor = recur_tensor()
            tensor.dtype = recur_dtype(rawValue: UInt32(reader.byte() % 5))
            tensor.rank = reader.byte() < 240 ? Int32(reader.byte() % 4) : Int32(truncatingIfNeeded: reader.uint32())
            var shape = [Int64](repeating: 0, count: 8)
            for axis in 0..<8 { shape[axis] = Int64(truncatingIfNeeded: reader.integer()) }
            withUnsafeMutableBytes(of: &tensor.shape) { raw in
                for axis in 0..<8 { raw.storeBytes(of: shape[axis], toByteOffset: axis * 8, as: Int64.self) }
            }
            let rank = (0...8).contains(tensor.rank) ? Int(tensor.rank) : 0
            let elements = Tensor.elementCount(shape.prefix(rank).map { Int($0) })
            let itemSize = tensor.dtype == RECUR_I64 ? 8 : 4
            var buffer: UnsafeMutableRawPointer?
            if let elements, elements <= 4096, reader.byte() < 250 {
                buffer = UnsafeMutableRawPointer.allocate(byteCount: max(elements * itemSize, 1), alignment: 8)
                for i in 0..<(elements * itemSize) { buffer?.storeBytes(of: reader.byte() % 8, toByteOffset: i, as: UInt8.self) }
            }
            names.append(name)
            buffers.append(buffer)
            tensor.data = buffer
            tensors.append(tensor)
        }
    }

    /// Calls `body` with the tensors (or NULL when there are none and the fuzzer says so).
    func withTensors<R>(nullWhenEmpty: Bool, _ body: (UnsafePointer<recur_tensor>?, UInt) -> R) -> R {
        var tensors = self.tensors
        return names.withPointers { pointers in
            for i in tensors.indices { tensors[i].name = pointers[i] }
            if tensors.isEmpty && nullWhenEmpty { return body(nil, 0) }
            return tensors.withUnsafeBufferPointer { body($0.baseAddress, UInt($0.count)) }
        }
    }

    func free() { buffers.forEach { $0?.deallocate() } }
}

extension Array where Element == [CChar] {
    /// Calls `body` with a stable pointer to each string.
    func withPointers<R>(_ body: ([UnsafePointer<CChar>]) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>] = []
        for string in self {
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: string.count)
            copy.initialize(from: string, count: string.count)
            pointers.append(copy)
        }
        defer { pointers.forEach { $0.deallocate() } }
        return body(pointers.map { UnsafePointer($0) })
    }
}

/// Reads every tensor of a result as a C caller would, by index and by name.
func inspect(_ result: OpaquePointer?, _ reader: inout ByteReader) {
    var tensor = recur_tensor()
    let count = recurResultCount(result)
    for index in 0..<count {
        failed(recurResultGet(result, index, &tensor))
        check((1...8).contains(tensor.rank), "result tensor of rank \(tensor.rank)")
    }
    failed(recurResultGet(result, UInt(truncatingIfNeeded: reader.integer()), &tensor))
    let name = cString(&reader)
    failed(recurResultFind(result, name, &tensor))
    failed(pointer(to: &tensor, null: reader.byte() < 20) { recurResultFind(result, "output", $0) })
    recurResultFree(result)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCAPI(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var reader = ByteReader(fuzzBytes(data, size))
    let which = Int(reader.byte()) % handles.count
    let handle: OpaquePointer? = reader.byte() < 8 ? nil : handles[which]
    let model = goldenModels[which].model
    switch reader.byte() % 5 {
    case 0:
        let arguments = TensorArguments(&reader, model: model)
        defer { arguments.free() }
        var result: OpaquePointer?
        let (nullTensors, hugeCount, nullOut) = (reader.byte() < 128, reader.byte() < 8, reader.byte() < 8)
        let status = arguments.withTensors(nullWhenEmpty: nullTensors) { tensors, count in
            pointer(to: &result, null: nullOut) { recurModelRun(handle, tensors, hugeCount ? UInt.max - count : count, $0) }
        }
        failed(status)
        if status == RECUR_OK { inspect(result, &reader) }
    case 1:
        var session: OpaquePointer?
        failed(pointer(to: &session, null: reader.byte() < 8) { recurSessionOpen(handle, $0) })
        for _ in 0..<Int(reader.byte() % 3) {
            let arguments = TensorArguments(&reader, model: model)
            var result: OpaquePointer?
            let status = arguments.withTensors(nullWhenEmpty: true) { recurSessionStep(session, $0, $1, &result) }
            arguments.free()
            failed(status)
            if status == RECUR_OK { inspect(result, &reader) }
            if reader.byte() < 30 { failed(recurSessionReset(session)) }
        }
        recurSessionFree(session)
    case 2:
        var sampling = recur_sampling(temperature: reader.float(), top_k: Int32(truncatingIfNeeded: reader.integer()),
                                      top_p: reader.float(), seed: reader.uint64())
        let prompt = (0..<Int(reader.byte() % 5)).map { _ in Int32(truncatingIfNeeded: reader.integer()) }
        let stop = (0..<Int(reader.byte() % 3)).map { _ in Int32(truncatingIfNeeded: reader.integer()) }
        let maxTokens = Int(reader.byte() % 12)
        var out = [Int32](repeating: -7, count: maxTokens + 1)
        var length: UInt = 0
        let nullSampling = reader.byte() < 40
        let status = prompt.withUnsafeBufferPointer { prompt in
            stop.withUnsafeBufferPointer { stop in
                out.withUnsafeMutableBufferPointer { out in
                    pointer(to: &sampling, null: nullSampling) { sampling in
                        recurGenerate(handle, prompt.baseAddress, UInt(prompt.count), sampling, stop.baseAddress, UInt(stop.count),
                                      UInt(maxTokens), maxTokens == 0 ? nil : out.baseAddress, &length)
                    }
                }
            }
        }
        failed(status)
        check(out[maxTokens] == -7, "recur_generate wrote past max_tokens")
        if status == RECUR_OK { check(Int(length) <= maxTokens, "out_len \(length) above max_tokens \(maxTokens)") }
    case 3:
        let text = cString(&reader)
        let capacity = Int(reader.byte() % 8)
        var ids = [Int64](repeating: -7, count: capacity + 1)
        var length: UInt = 0
        let nullText = reader.byte() < 8
        failed(text.withUnsafeBufferPointer { text in
            ids.withUnsafeMutableBufferPointer { ids in
                recurModelEncode(handle, nullText ? nil : text.baseAddress, capacity == 0 ? nil : ids.baseAddress, UInt(capacity), &length)
            }
        })
        check(ids[capacity] == -7, "recur_model_encode wrote past its capacity")
    default:
        let bytes = reader.rest()
        var loaded: OpaquePointer?
        let status = bytes.withUnsafeBytes { recurModelLoadMemory($0.baseAddress, UInt($0.count), &loaded) }
        failed(status)
        if status == RECUR_OK {
            var json: UnsafeMutablePointer<CChar>?
            failed(recurModelDescribe(loaded, &json))
            recurStringFree(json)
            recurModelFree(loaded)
        }
    }
    return 0
}
