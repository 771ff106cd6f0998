#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The safetensors container: an u64 little-endian header length N, N bytes of JSON, then the data.
/// Reading checks everything the model format requires of the container (offsets inside the data,
/// no overlaps, sizes that match dtype × shape); what the tensors mean is the model loader's business.
public struct SafeTensorsFile {
    /// One tensor's header entry.
    public struct Entry: Sendable {
        public let name: String
        /// As written in the file: "F32", "F16", "BF16", "F64", "I32", "I64", ...
        public let dtype: String
        public let shape: [Int]
        /// Byte range inside the data section.
        public let range: Range<Int>
    }

    /// A header longer than this is refused (model-format.md, Container).
    public static let maxHeaderLength = 100_000_000

    /// `__metadata__`, string to string.
    public let metadata: [String: String]
    /// Entries in file order (by data offset).
    public let entries: [Entry]
    private let storage: Storage

    /// Opens a file and reads its header; each tensor's bytes are read when `tensor` asks for them,
    /// from the file kept open for the time this value lives.
    public init(path: String) throws(RecurError) {
        try self.init(storage: .file(try OpenFile(path: path)), source: path)
    }

    /// Reads a file image already in memory.
    public init(bytes: [UInt8], source: String = "<memory>") throws(RecurError) {
        try self.init(storage: .bytes(bytes), source: source)
    }

    /// Reads a file image in memory without copying it: the caller keeps it alive and unchanged for
    /// as long as this value reads it (Model(borrowing:) uses one only while it loads).
    init(borrowing image: UnsafeRawBufferPointer, source: String) throws(RecurError) {
        try self.init(storage: .borrowed(image), source: source)
    }

    private init(storage: Storage, source: String) throws(RecurError) {
        self.storage = storage
        (metadata, entries) = try SafeTensorsFile.parseHeader(storage, source: source)
    }

    /// Bytes element for each supported dtype.
    static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "F32", "I32": 4
        case "F16", "BF16": 2
        case "F64", "I64": 8
        case "I8", "U8", "BOOL": 1
        case "I16", "U16": 2
        case "U32": 4
        case "U64": 8
        default: nil
        }
    }

    private static func parseHeader(_ storage: Storage, source: String) throws(RecurError) -> ([String: String], [Entry]) {
        func fail(_ what: String) -> RecurError { .format("\(source): \(what)") }
        let fileSize = storage.count
        guard fileSize >= 8 else { throw fail("file is \(fileSize) bytes, too short for a safetensors header") }
        let headerLength = try storage.withBytes(0..<8) { raw in raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian }
        guard headerLength <= UInt64(maxHeaderLength) else {
            throw fail("header length \(headerLength) is above the limit of \(maxHeaderLength) bytes")
        }
        guard 8 + Int(headerLength) <= fileSize else {
            throw fail("header length \(headerLength) runs past the end of the \(fileSize)-byte file")
        }
        let header = try storage.withBytes(8..<(8 + Int(headerLength))) { raw throws(RecurError) in
            do throws(RecurError) {
                return try JSONValue.parse(raw)
            } catch {
                throw fail("header is \(error.message)")
            }
        }
        guard case .object(let fields) = header else { throw fail("header is not a JSON object") }
        let dataStart = 8 + Int(headerLength)
        let dataLength = fileSize - dataStart

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (name, value) in fields {
            if name == "__metadata__" {
                guard case .object(let m) = value else { throw fail("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v.stringValue else { throw fail("__metadata__[\"\(k)\"] is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let dtype = value["dtype"]?.stringValue else { throw fail("tensor \(name): missing dtype") }
            guard let size = elementSize(dtype) else { throw fail("tensor \(name): unknown dtype \(dtype)") }
            guard let dims = value["shape"]?.arrayValue else { throw fail("tensor \(name): missing shape") }
            var shape: [Int] = []
            for d in dims {
                guard let n = d.intValue, n >= 0 else { throw fail("tensor \(name): shape \(dims.map { $0.serialized() }) has a bad dimension") }
                shape.append(n)
            }
            guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
                  let begin = offsets[0].intValue, let end = offsets[1].intValue
            else { throw fail("tensor \(name): data_offsets must be [begin, end]") }
            guard begin >= 0, begin <= end, end <= dataLength else {
                throw fail("tensor \(name): data_offsets [\(begin), \(end)] lie outside the \(dataLength)-byte data")
            }
            guard let count = Tensor.elementCount(shape), case (let bytes, false) = count.multipliedReportingOverflow(by: size),
                  bytes == end - begin
            else {
                let needed = Tensor.elementCount(shape).flatMap { count in
                    let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
                    return overflow ? nil : String(bytes)
                }
                throw fail("tensor \(name): \(dtype) \(shape) needs \(needed ?? "too many") bytes, data_offsets give \(end - begin)")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, range: begin..<end))
        }
        entries.sort { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        for (a, b) in zip(entries, entries.dropFirst()) where a.range.upperBound > b.range.lowerBound {
            throw fail("tensors \(a.name) and \(b.name) overlap in the data")
        }
        return (metadata, entries.map { Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape, range: ($0.range.lowerBound + dataStart)..<($0.range.upperBound + dataStart)) })
    }


    public func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    /// The tensor's values: float dtypes become float32, I32 and I64 stay integers. From a file, its
    /// bytes are read now (and only held while they are converted).
    public func tensor(_ entry: Entry) throws(RecurError) -> Tensor {
        if let floats = try floats(entry) {
            return Tensor(floats: floats, shape: entry.shape)
        }
        return try storage.withBytes(entry.range) { bytes throws(RecurError) in
            switch entry.dtype {
            case "I32": return Tensor(unchecked: .int32(bytes.loadLittleEndianArray(Int32.self) { $0 }), shape: entry.shape)
            case "I64": return Tensor(unchecked: .int64(bytes.loadLittleEndianArray(Int64.self) { $0 }), shape: entry.shape)
            default: throw RecurError.format("tensor \(entry.name): dtype \(entry.dtype) is not supported (F32, F16, BF16, F64, I32, I64)")
            }
        }
    }

    /// The dtypes `floats` converts to float32: the model format's weight dtypes.
    public static let floatDTypes: Set<String> = ["F32", "F16", "BF16", "F64"]

    /// Elements `elements` of a float tensor (in row-major order, inside its element count; nil: all
    /// of them) as float32, read now; nil for other dtypes. From a file in F32 the bytes are read
    /// straight into the values; in another dtype a block of them at a time, so that a half-precision
    /// table is not held twice over, as bytes and as floats, while it loads.
    public func floats(_ entry: Entry, elements: Range<Int>? = nil) throws(RecurError) -> [Float]? {
        guard SafeTensorsFile.floatDTypes.contains(entry.dtype), let size = SafeTensorsFile.elementSize(entry.dtype) else { return nil }
        let elements = elements ?? 0..<(entry.range.count / size)
        guard elements.lowerBound >= 0, elements.upperBound <= entry.range.count / size else {
            throw RecurError(.invalidArgument, "tensor \(entry.name): elements \(elements) are not within its \(entry.range.count / size)")
        }
        let start = entry.range.lowerBound + elements.lowerBound * size
        if case .file(let file) = storage, entry.dtype == "F32", UInt32(1).littleEndian == 1 {
            return try file.read(start..<(start + elements.count * size), as: Float.self)
        }
        let blockElements = SafeTensorsFile.decodeBlockBytes / size
        var failure: RecurError?
        let values = [Float](unsafeUninitializedCapacity: elements.count) { values, initialized in
            for first in stride(from: 0, to: elements.count, by: blockElements) {
                let block = first..<min(elements.count, first + blockElements)
                do throws(RecurError) {
                    try storage.withBytes((start + block.lowerBound * size)..<(start + block.upperBound * size)) { bytes in
                        SafeTensorsFile.decodeFloats(bytes, dtype: entry.dtype, into: UnsafeMutableBufferPointer(rebasing: values[block]))
                    }
                } catch {
                    failure = error
                    return
                }
            }
            initialized = values.count
        }
        if let failure { throw failure }
        return values
    }

    /// Elements `elements` of an F16 or BF16 tensor (in row-major order, inside its element count) as
    /// their 16 bits, read now; nil for other dtypes.
    public func halfBits(_ entry: Entry, elements: Range<Int>) throws(RecurError) -> [UInt16]? {
        guard entry.dtype == "F16" || entry.dtype == "BF16" else { return nil }
        let count = entry.range.count / 2
        guard elements.lowerBound >= 0, elements.upperBound <= count else {
            throw RecurError(.invalidArgument, "tensor \(entry.name): elements \(elements) are not within its \(count)")
        }
        let start = entry.range.lowerBound + elements.lowerBound * 2
        return try storage.withBytes(start..<(start + elements.count * 2)) { bytes in bytes.loadLittleEndianArray(UInt16.self) { $0 } }
    }

    /// The most bytes of a tensor not in float32 that `floats` holds at once, read from a file.
    private static let decodeBlockBytes = 1 << 18

    /// `bytes` of a float dtype converted to float32 into `values`, one for each element.
    private static func decodeFloats(_ bytes: UnsafeRawBufferPointer, dtype: String, into values: UnsafeMutableBufferPointer<Float>) {
        switch dtype {
        case "F32": bytes.loadLittleEndian(UInt32.self, into: values) { Float(bitPattern: $0) }
        case "F64": bytes.loadLittleEndian(UInt64.self, into: values) { Float(Double(bitPattern: $0)) }
        case "BF16": bytes.loadLittleEndian(UInt16.self, into: values) { Float(bitPattern: UInt32($0) << 16) }
        default: bytes.loadLittleEndian(UInt16.self, into: values, floatFromHalf)  // "F16", the last of floatDTypes
        }
    }

    private enum Storage {
        case file(OpenFile)
        case bytes([UInt8])
        case borrowed(UnsafeRawBufferPointer)

        var count: Int {
            switch self {
            case .file(let file): file.size
            case .bytes(let array): array.count
            case .borrowed(let image): image.count
            }
        }

        /// Calls `body` with the bytes in `range` (inside 0..<count).
        func withBytes<R>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws(RecurError) -> R) throws(RecurError) -> R {
            switch self {
            case .file(let file):
                let bytes = try file.read(range)
                return try bytes.withUnsafeBytes { raw in Result { () throws(RecurError) in try body(raw) } }.get()
            case .bytes(let array):
                return try array.withUnsafeBytes { raw in
                    Result { () throws(RecurError) in try body(UnsafeRawBufferPointer(rebasing: raw[range])) }
                }.get()
            case .borrowed(let image):
                return try body(UnsafeRawBufferPointer(rebasing: image[range]))
            }
        }
    }
}

/// IEEE 754 binary16 to float32, exact (subnormals, infinities and NaN included).
func floatFromHalf(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int((h >> 10) & 0x1F)
    let mantissa = UInt32(h & 0x3FF)
    switch exponent {
    case 0:
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -magnitude : magnitude
    case 31:
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    default:
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}

extension UnsafeRawBufferPointer {
    /// The first `values.count` little-endian values of `T` in these bytes (which hold at least as
    /// many; no alignment needed), each converted into `values`.
    func loadLittleEndian<T: FixedWidthInteger, Element>(_: T.Type, into values: UnsafeMutableBufferPointer<Element>, _ convert: (T) -> Element) {
        for i in values.indices {
            values.initializeElement(at: i, to: convert(T(littleEndian: loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))))
        }
    }

    /// Little-endian values of `T` packed in these bytes (count / size of them; no alignment needed),
    /// each converted as it is read.
    func loadLittleEndianArray<T: FixedWidthInteger, Element>(_: T.Type, _ convert: (T) -> Element) -> [Element] {
        [Element](unsafeUninitializedCapacity: count / MemoryLayout<T>.size) { values, initialized in
            loadLittleEndian(T.self, into: values, convert)
            initialized = values.count
        }
    }
}

extension Tensor {
    /// For decoders that have already checked element count against shape.
    init(unchecked storage: Storage, shape: [Int]) {
        self.shape = shape
        self.storage = storage
    }
}

/// A regular file open for reading, closed when the last reference goes. Read with pread, not
/// mapped: a mapped file that another process truncates (a model copied over while it loads) kills
/// the reader with SIGBUS, where a read just comes up short and is reported.
final class OpenFile {
    let path: String
    /// The size when the file was opened.
    let size: Int
    private let fd: Int32

    init(path: String) throws(RecurError) {
        // C would see only the part before the NUL: a different file than the one named.
        guard !path.utf8.contains(0) else { throw RecurError(.io, "\(path.debugDescription): path contains a NUL byte") }
        // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat below refuses it anyway.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw RecurError(.io, "\(path): open failed: \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw RecurError(.io, "\(path): fstat failed: \(message)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw RecurError(.io, "\(path): not a regular file")
        }
        self.path = path
        self.fd = fd
        size = Int(info.st_size)
    }

    /// The bytes at `range` (inside 0..<size), read in full.
    func read(_ range: Range<Int>) throws(RecurError) -> [UInt8] {
        try read(range, as: UInt8.self)
    }

    /// The bytes at `range` as values of `T` in the host's byte order, read straight into the
    /// array (no copy: a tensor's raw bytes and its values are not held at once).
    func read<T: BitwiseCopyable>(_ range: Range<Int>, as: T.Type) throws(RecurError) -> [T] {
        var failure: RecurError?
        let values = [T](unsafeUninitializedCapacity: range.count / MemoryLayout<T>.stride) { buffer, initialized in
            let bytes = UnsafeMutableRawBufferPointer(buffer)
            var done = 0
            while done < range.count {
                let got = pread(fd, bytes.baseAddress! + done, range.count - done, off_t(range.lowerBound + done))
                if got > 0 {
                    done += got
                } else if got == 0 {
                    failure = RecurError(.io, "\(path): the file ends at byte \(range.lowerBound + done), before byte \(range.upperBound) its header promises (was it changed while being read?)")
                    return
                } else if errno != EINTR {
                    failure = RecurError(.io, "\(path): pread of \(range.count) bytes at \(range.lowerBound) failed: \(String(cString: strerror(errno)))")
                    return
                }
            }
            initialized = buffer.count
        }
        if let failure { throw failure }
        return values
    }

    deinit {
        close(fd)
    }
}

/// Writes safetensors files: the project's own output (`recur run`, training) and test fixtures.
public enum SafeTensorsWriter {
    /// The file image of `tensors` (in the order given) with `metadata`.
    public static func encode(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]) -> [UInt8] {
        var header: [String: JSONValue] = [:]
        if !metadata.isEmpty { header["__metadata__"] = .object(metadata.mapValues(JSONValue.string)) }
        var offset = 0
        for (name, tensor) in tensors {
            let size = tensor.count * tensor.dtype.byteSize
            let dtype: String = switch tensor.dtype {
            case .float32: "F32"
            case .int32: "I32"
            case .int64: "I64"
            }
            header[name] = .object([
                "dtype": .string(dtype),
                "shape": .array(tensor.shape.map(JSONValue.int)),
                "data_offsets": .array([.int(offset), .int(offset + size)]),
            ])
            offset += size
        }
        var headerBytes = Array(JSONValue.object(header).serialized().utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }  // the data starts 8-byte aligned
        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for (_, tensor) in tensors {
            switch tensor.storage {
            case .float32(let v): v.withUnsafeBytes { out.append(contentsOf: $0) }
            case .int32(let v): v.withUnsafeBytes { out.append(contentsOf: $0) }
            case .int64(let v): v.withUnsafeBytes { out.append(contentsOf: $0) }
            }
        }
        return out
    }

    /// Writes the file atomically: to a temporary name beside `path`, then renamed over it.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to path: String) throws(RecurError) {
        let bytes = encode(tensors, metadata: metadata)
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RecurError(.io, "\(temporary): open failed: \(String(cString: strerror(errno)))") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let message = String(cString: strerror(errno))
                close(fd)
                unlink(temporary)
                throw RecurError(.io, "\(temporary): write failed: \(message)")
            }
            written += n
        }
        guard close(fd) == 0, rename(temporary, path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(temporary)
            throw RecurError(.io, "\(path): close/rename failed: \(message)")
        }
    }
}
