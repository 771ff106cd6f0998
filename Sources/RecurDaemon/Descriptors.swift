import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: its name and errno.
struct SystemError: Error, CustomStringConvertible {
    let call: String
    let errno: Int32

    var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// Calls `body` until it stops failing with EINTR; -1 otherwise throws with errno.
@discardableResult
private func retrying<R: BinaryInteger>(_ call: String, _ body: () -> R) throws(SystemError) -> R {
    while true {
        let result = body()
        if result >= 0 { return result }
        if errno != EINTR { throw SystemError(call: call, errno: errno) }
    }
}

/// A Linux eventfd that workers signal and the I/O thread polls: a plain descriptor number, so it
/// crosses threads as a value.
struct WakeUp: Sendable {
    let descriptor: Int32

    init() throws(SystemError) {
        descriptor = try retrying("eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
    }

    /// Makes the descriptor readable. Never fails for want of space: the counter saturates far
    /// beyond any number of pending wake-ups.
    func signal() {
        var one: UInt64 = 1
        _ = try? retrying("write(eventfd)") { write(descriptor, &one, 8) }
    }

    /// Makes the descriptor unreadable again.
    func clear() {
        var count: UInt64 = 0
        _ = try? retrying("read(eventfd)") { read(descriptor, &count, 8) }
    }
}

/// SIGINT and SIGTERM as a readable descriptor. Blocks both signals in the calling thread, so
/// create it before starting any other thread (they inherit the mask).
struct StopSignals {
    let descriptor: Int32

    init() throws(SystemError) {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        let status = pthread_sigmask(SIG_BLOCK, &set, nil)
        guard status == 0 else { throw SystemError(call: "pthread_sigmask", errno: status) }
        descriptor = try retrying("signalfd") { signalfd(-1, &set, Int32(SFD_NONBLOCK | SFD_CLOEXEC)) }
    }

    /// The signal received, or nil when none is pending.
    func take() -> Int32? {
        var info = signalfd_siginfo()
        let size = MemoryLayout<signalfd_siginfo>.size
        guard let count = try? retrying("read(signalfd)", { read(descriptor, &info, size) }), count == size else { return nil }
        return Int32(info.ssi_signo)
    }
}
