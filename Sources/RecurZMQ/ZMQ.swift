import CZMQ
#if canImport(Glibc)
import Glibc
#endif

/// A failed libzmq call: its name, errno and libzmq's text for it.
public struct ZMQError: Error, Sendable, CustomStringConvertible {
    public let call: String
    public let errno: Int32
    public let message: String

    init(_ call: String, errno code: Int32 = zmq_errno()) {
        self.call = call
        self.errno = code
        self.message = String(cString: zmq_strerror(code))
    }

    public var description: String { "\(call): \(message) (errno \(errno))" }
}

/// Calls `body` until it stops failing with EINTR; a negative result otherwise throws.
@discardableResult
private func check(_ call: String, _ body: () -> Int32) throws(ZMQError) -> Int32 {
    while true {
        let result = body()
        if result >= 0 { return result }
        let code = zmq_errno()
        if code != EINTR { throw ZMQError(call, errno: code) }
    }
}

/// A ZeroMQ context. Its sockets must be closed before it is released (ZeroMQ waits for them).
public final class Context {
    let handle: UnsafeMutableRawPointer

    public init() throws(ZMQError) {
        guard let handle = zmq_ctx_new() else { throw ZMQError("zmq_ctx_new") }
        self.handle = handle
    }

    deinit {
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}

/// A ZeroMQ socket, owned and used by one thread (ZeroMQ sockets are not thread-safe).
public final class Socket {
    public enum Kind {
        case router, rep, req, dealer, pair

        var value: Int32 {
            switch self {
            case .router: ZMQ_ROUTER
            case .rep: ZMQ_REP
            case .req: ZMQ_REQ
            case .dealer: ZMQ_DEALER
            case .pair: ZMQ_PAIR
            }
        }
    }

    let handle: UnsafeMutableRawPointer
    /// Keeps the context alive as long as the socket.
    private let context: Context

    public init(_ context: Context, _ kind: Kind) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, kind.value) else { throw ZMQError("zmq_socket") }
        self.handle = handle
        self.context = context
    }

    deinit {
        zmq_close(handle)
    }

    public func bind(_ endpoint: String) throws(ZMQError) {
        try check("zmq_bind(\(endpoint))") { zmq_bind(handle, endpoint) }
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        try check("zmq_connect(\(endpoint))") { zmq_connect(handle, endpoint) }
    }

    public func setOption(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var value = value
        try check("zmq_setsockopt(\(option))") { zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) }
    }

    public func setOption(_ option: Int32, _ value: Int64) throws(ZMQError) {
        var value = value
        try check("zmq_setsockopt(\(option))") { zmq_setsockopt(handle, option, &value, MemoryLayout<Int64>.size) }
    }

    public func setOption(_ option: Int32, bytes: [UInt8]) throws(ZMQError) {
        try check("zmq_setsockopt(\(option))") {
            bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        }
    }

    /// Receives one whole multipart message; nil when `wait` is false and none is ready.
    public func receive(wait: Bool = true) throws(ZMQError) -> [[UInt8]]? {
        var frames: [[UInt8]] = []
        while true {
            var message = zmq_msg_t()
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            do {
                try check("zmq_msg_recv") { zmq_msg_recv(&message, handle, wait || !frames.isEmpty ? 0 : ZMQ_DONTWAIT) }
            } catch where error.errno == EAGAIN && frames.isEmpty {
                return nil
            }
            let size = zmq_msg_size(&message)
            if size > 0, let data = zmq_msg_data(&message) {
                frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            } else {
                frames.append([])
            }
            if zmq_msg_more(&message) == 0 { return frames }
        }
    }

    /// Sends `frames` as one multipart message.
    public func send(_ frames: [[UInt8]]) throws(ZMQError) {
        for (i, frame) in frames.enumerated() {
            let flags = i < frames.count - 1 ? ZMQ_SNDMORE : 0
            try check("zmq_send") { frame.withUnsafeBytes { Int32(truncatingIfNeeded: zmq_send(handle, $0.baseAddress, $0.count, flags)) } }
        }
    }
}

/// What `poll` watches: a socket, or a file descriptor (an eventfd, a signalfd) for readability.
public enum PollItem {
    case socket(Socket)
    case descriptor(Int32)
}

/// Waits until an item is readable or `timeoutMilliseconds` pass (-1: no limit); returns which
/// items are readable, in order.
public func poll(_ items: [PollItem], timeoutMilliseconds: Int) throws(ZMQError) -> [Bool] {
    var raw = items.map { item -> zmq_pollitem_t in
        switch item {
        case .socket(let s): zmq_pollitem_t(socket: s.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        case .descriptor(let fd): zmq_pollitem_t(socket: nil, fd: fd, events: Int16(ZMQ_POLLIN), revents: 0)
        }
    }
    let count = raw.count
    try check("zmq_poll") { zmq_poll(&raw, Int32(count), timeoutMilliseconds) }
    return raw.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
}

/// CURVE keys as Z85 text (40 characters each).
public struct CurveKeyPair: Sendable {
    public let publicKey: String
    public let secretKey: String

    /// A fresh key pair from libzmq's random source.
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var publicText = [CChar](repeating: 0, count: 41)
        var secretText = [CChar](repeating: 0, count: 41)
        try check("zmq_curve_keypair") { zmq_curve_keypair(&publicText, &secretText) }
        return CurveKeyPair(publicKey: text(publicText), secretKey: text(secretText))
    }
}

/// The 32 bytes a Z85 key of 40 characters encodes, or nil when `text` is not one.
public func decodeZ85Key(_ text: String) -> [UInt8]? {
    guard text.utf8.count == 40 else { return nil }
    var bytes = [UInt8](repeating: 0, count: 32)
    return zmq_z85_decode(&bytes, text) == nil ? nil : bytes
}

/// The Z85 text of a 32-byte key.
public func encodeZ85Key(_ bytes: [UInt8]) -> String? {
    guard bytes.count == 32 else { return nil }
    var text = [CChar](repeating: 0, count: 41)
    return zmq_z85_encode(&text, bytes, 32) == nil ? nil : RecurZMQ.text(text)
}

/// The text of a NUL-terminated C string buffer.
private func text(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
