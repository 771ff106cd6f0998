import Recur
import Synchronization

/// The loaded models by name. A request takes the model when it arrives and keeps it, so `load`
/// replacing a model and `unload` never disturb requests already in flight.
final class ModelRegistry: Sendable {
    private let models = Mutex<[String: Model]>([:])

    func model(_ name: String) throws(WireError) -> Model {
        guard let model = models.withLock({ $0[name] }) else { throw WireError(.notFound, "model '\(name)' is not loaded") }
        return model
    }

    /// Puts `model` under `name`, replacing any model of that name in one step.
    func install(_ model: Model, as name: String) {
        models.withLock { $0[name] = model }
    }

    func remove(_ name: String) throws(WireError) {
        guard models.withLock({ $0.removeValue(forKey: name) }) != nil else {
            throw WireError(.notFound, "model '\(name)' is not loaded")
        }
    }

    /// Every model by name, sorted by name.
    var all: [(name: String, model: Model)] {
        models.withLock { table in table.keys.sorted().compactMap { name in table[name].map { (name, $0) } } }
    }
}

/// Open sessions by id. The I/O thread lets only one request at a time work on a session, so a
/// worker may take a session's value, step it, and put it back.
final class SessionStore: Sendable {
    private struct Entry {
        var session: Session
        var lastUsed: ContinuousClock.Instant
    }

    private let sessions = Mutex<[String: Entry]>([:])
    let capacity: Int
    let idleTimeout: Duration

    init(capacity: Int, idleTimeout: Duration) {
        self.capacity = capacity
        self.idleTimeout = idleTimeout
    }

    var count: Int { sessions.withLock { $0.count } }

    /// Opens a session on `model` and returns its id: 128 random bits from the system's
    /// cryptographic source, so ids cannot be guessed.
    func open(_ model: Model) throws(WireError) -> String {
        let session: Session
        do { session = try Session(model: model) } catch { throw WireError(error) }
        var generator = SystemRandomNumberGenerator()
        let id = "s" + (0..<4).map { _ in
            let hex = String(generator.next() as UInt32, radix: 16)
            return String(repeating: "0", count: 8 - hex.count) + hex
        }.joined()
        let capacity = self.capacity
        let added = sessions.withLock { table in
            guard table.count < capacity else { return false }
            table[id] = Entry(session: session, lastUsed: .now)
            return true
        }
        guard added else { throw WireError(.tooLarge, "\(capacity) sessions are open, the configured limit; close one first") }
        return id
    }

    func session(_ id: String) throws(WireError) -> Session {
        guard let entry = sessions.withLock({ $0[id] }) else { throw WireError(.notFound, "session '\(id.prefix(64))' is not open (closed, expired or never opened)") }
        return entry.session
    }

    /// Stores a session's new state after a step or reset; a session closed meanwhile stays closed.
    func update(_ id: String, _ session: Session) {
        sessions.withLock { table in
            if table[id] != nil { table[id] = Entry(session: session, lastUsed: .now) }
        }
    }

    func close(_ id: String) throws(WireError) {
        guard sessions.withLock({ $0.removeValue(forKey: id) }) != nil else {
            throw WireError(.notFound, "session '\(id.prefix(64))' is not open (closed, expired or never opened)")
        }
    }

    /// Closes sessions idle past the time-out, except `busy` ones; returns how many it closed.
    func expire(except busy: Set<String>) -> Int {
        let deadline = ContinuousClock.now - idleTimeout
        return sessions.withLock { table in
            let stale = table.filter { !busy.contains($0.key) && $0.value.lastUsed < deadline }.map(\.key)
            for id in stale { table.removeValue(forKey: id) }
            return stale.count
        }
    }
}
