import Dispatch
import Foundation
import Logging
import Recur
import Synchronization

/// Who to answer, and when the request arrived.
struct Route: Sendable {
    /// The ROUTER envelope: the peer's identity frames and the empty delimiter.
    let envelope: [[UInt8]]
    let received: ContinuousClock.Instant
}

/// A decoded request on its way to a worker. `model` is taken from the registry on arrival for
/// `infer` and `session.step`, so a request finishes on the model it started with.
struct Incoming: Sendable {
    let request: Request
    let route: Route
    let model: Model?
}

/// Which requests may be computed together: `infer` on one model, or `session.step` on
/// sessions of one model, whose inputs' T lies in the same power-of-two range, so padding at
/// most doubles a batch's steps and a short request never waits on a much longer one.
struct BatchKey: Hashable, Sendable {
    let model: ObjectIdentifier
    let isStep: Bool
    /// ⌊log₂ T⌋ + 1 of the request's input (0 when it has no [B, T, …] input).
    let stepsRange: Int

    init(model: Model, request: Request) {
        self.model = ObjectIdentifier(model)
        var inputs: [String: Tensor] = [:]
        switch request.operation {
        case .infer(_, let given, _): (isStep, inputs) = (false, given)
        case .sessionStep(_, let given): (isStep, inputs) = (true, given)
        default: isStep = false
        }
        let steps = inputs["input"].flatMap { $0.shape.count >= 2 ? $0.shape[1] : nil } ?? 0
        stepsRange = Int.bitWidth - max(steps, 0).leadingZeroBitCount
    }
}

/// A unit of work for the pool.
enum Job: Sendable {
    /// A request too large to decode on the I/O thread without holding up everyone else.
    case decode([[UInt8]], Route, RequestLimits)
    case single(Incoming)
    /// `infer` requests on one model, or `session.step` requests on sessions of one model (as
    /// `key.isStep` says), computed as one batch.
    case batch(BatchKey, Model, [Incoming])
    /// Gives the buffers kept between passes back to the system (`ReusedFloats.releaseAll`).
    case releaseKeptBuffers
    case stop
}

/// An answered request, on its way back to the I/O thread.
struct Completion: Sendable {
    let route: Route
    let op: String
    /// "ok" or the error code.
    let outcome: String
    let frames: [[UInt8]]
    /// The session the request held, released when its reply leaves.
    let session: String?

    init(_ incoming: Incoming, _ result: Result<[[UInt8]], WireError>) {
        route = incoming.route
        op = incoming.request.name
        session = incoming.request.session
        switch result {
        case .success(let frames):
            outcome = "ok"
            self.frames = frames
        case .failure(let error):
            outcome = error.code.rawValue
            frames = ReplyEncoder.failure(id: incoming.request.id, error)
        }
    }
}

/// Jobs for the worker pool: first in, first out.
final class WorkQueue: Sendable {
    private let jobs = Mutex<[Job]>([])
    private let available = DispatchSemaphore(value: 0)

    func push(_ job: Job) {
        jobs.withLock { $0.append(job) }
        available.signal()
    }

    /// Waits for the next job.
    func pop() -> Job {
        available.wait()
        return jobs.withLock { $0.isEmpty ? .stop : $0.removeFirst() }
    }
}

/// What a worker hands back for a job.
enum Finished: Sendable {
    /// A computed job's answers, and the key of the batch they were, if they were one.
    case answered([Completion], batch: BatchKey?)
    /// A `decode` job's request (or why it cannot be decoded), for the I/O thread to admit.
    case decoded(Route, RequestHeader, Result<Request, WireError>)
}

/// Finished jobs going back from the workers to the I/O thread, which polls `wakeUp`; one entry
/// per job, so the I/O thread also learns when a worker is free again.
final class CompletionQueue: Sendable {
    private let done = Mutex<[Finished]>([])
    let wakeUp: WakeUp

    init(wakeUp: WakeUp) {
        self.wakeUp = wakeUp
    }

    func post(_ finished: Finished) {
        done.withLock { $0.append(finished) }
        wakeUp.signal()
    }

    /// Every job finished so far. Clears the wake-up first, so a post racing with this call is
    /// either taken now or wakes the I/O thread again.
    func take() -> [Finished] {
        wakeUp.clear()
        return done.withLock { pending in
            defer { pending = [] }
            return pending
        }
    }
}

/// What workers do with jobs: everything but `ping` and `stats`, which the I/O thread answers.
struct Executor: Sendable {
    let models: ModelRegistry
    let sessions: SessionStore
    /// `load` reads only files inside this directory; nil allows any path.
    let loadDirectory: String?
    let logger: Logger

    func run(_ job: Job) -> Finished {
        switch job {
        case .decode(let frames, let route, let limits):
            let (header, request) = RequestDecoder.decode(frames, limits: limits)
            return .decoded(route, header, request)
        case .single(let incoming):
            return .answered([Completion(incoming, Result { () throws(WireError) in try single(incoming.request) })], batch: nil)
        case .batch(let key, let model, let members):
            return .answered(key.isStep ? step(members) : infer(model, members), batch: key)
        case .releaseKeptBuffers:
            let released = ReusedFloats.releaseAll()
            logger.info("kept buffers released after idle", metadata: ["released_bytes": "\(released)"])
            return .answered([], batch: nil)
        case .stop: return .answered([], batch: nil)
        }
    }

    private func single(_ request: Request) throws(WireError) -> [[UInt8]] {
        let id = request.id
        switch request.operation {
        case .ping, .stats, .infer, .sessionStep:
            throw WireError(.internal, "op \(request.name) reached a worker as a single job")
        case .models:
            let entries: [JSONValue] = models.all.map { name, model in
                let description = model.describe()
                return .object([
                    "name": .string(name),
                    "input": description["input"] ?? .null,
                    "outputs": description["outputs"] ?? .null,
                    "layers": .array(model.architecture.layers.map { .object(["name": .string($0.name), "type": .string($0.type)]) }),
                ])
            }
            return ReplyEncoder.success(id: id, ["models": .array(entries)])
        case .describe(let name):
            return ReplyEncoder.success(id: id, ["model": try models.model(name).describe()])
        case .sessionOpen(let name):
            return ReplyEncoder.success(id: id, ["session": .string(try sessions.open(try models.model(name)))])
        case .sessionReset(let sessionID):
            var session = try sessions.session(sessionID)
            session.reset()
            sessions.update(sessionID, session)
            return ReplyEncoder.success(id: id, [:])
        case .sessionClose(let sessionID):
            try sessions.close(sessionID)
            return ReplyEncoder.success(id: id, [:])
        case .generate(let name, let prompt, let maxTokens, let sampling, let stop):
            let model = try models.model(name)
            let tokens: [Int]
            do {
                tokens = try model.generate(prompt: prompt, maxTokens: maxTokens, sampling: sampling, stop: stop)
            } catch {
                throw WireError(error)
            }
            return ReplyEncoder.success(id: id, ["tokens": .array(tokens.map { .int($0) })])
        case .load(let name, let path):
            let model: Model
            let file = try loadablePath(path)
            do { model = try Model(path: file) } catch { throw WireError(error) }
            models.install(model, as: name)
            logger.info("model loaded", metadata: ["model": "\(name)", "path": "\(path)"])
            return ReplyEncoder.success(id: id, [:])
        case .unload(let name):
            try models.remove(name)
            // Buffers kept for the next pass were sized by this model's passes as much as any other's.
            let released = ReusedFloats.releaseAll()
            logger.info("model unloaded", metadata: ["model": "\(name)", "released_bytes": "\(released)"])
            return ReplyEncoder.success(id: id, [:])
        }
    }

    /// `path` resolved against the load directory (symbolic links and `..` included); a path
    /// outside it is `unauthorized`, so clients cannot make the daemon read arbitrary files.
    private func loadablePath(_ path: String) throws(WireError) -> String {
        // No file system path holds a NUL; Foundation would read it as "%00" and open(2) as the end.
        guard !path.utf8.contains(0) else { throw WireError(.badRequest, "path contains a NUL byte") }
        guard let loadDirectory else { return path }
        let base = URL(fileURLWithPath: loadDirectory).standardizedFileURL.resolvingSymlinksInPath().path
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : URL(fileURLWithPath: base).appendingPathComponent(path)
        let resolved = url.standardizedFileURL.resolvingSymlinksInPath().path
        guard resolved.hasPrefix(base.hasSuffix("/") ? base : base + "/") else {
            throw WireError(.unauthorized, "path '\(path)' is outside the models directory; recurd loads only files inside it (see --load-any-path)")
        }
        return resolved
    }

    private func infer(_ model: Model, _ batch: [Incoming]) -> [Completion] {
        let inputs = batch.map { incoming -> [String: Tensor] in
            if case .infer(_, let inputs, _) = incoming.request.operation { return inputs }
            return [:]
        }
        let results = Batching.run(model, inputs)
        return zip(batch, results).map { incoming, result in
            var wanted: [String]?
            if case .infer(_, _, let outputs) = incoming.request.operation { wanted = outputs }
            let completion = Completion(incoming, reply(incoming.request, result, only: wanted))
            // Encoded into the reply's frames: the outputs' buffers serve the next pass (ReusedFloats).
            if case .success(let outputs) = result { for output in outputs { ReusedFloats.give(output.tensor) } }
            return completion
        }
    }

    private func step(_ batch: [Incoming]) -> [Completion] {
        var completions: [Completion] = []
        var members: [(incoming: Incoming, id: String, inputs: [String: Tensor])] = []
        var streams: [Session] = []
        for incoming in batch {
            guard case .sessionStep(let id, let inputs) = incoming.request.operation else { continue }
            do throws(WireError) {
                streams.append(try sessions.session(id))
                members.append((incoming, id, inputs))
            } catch {
                completions.append(Completion(incoming, .failure(error)))
            }
        }
        let results = Batching.step(&streams, members.map(\.inputs))
        for (i, member) in members.enumerated() {
            if case .success = results[i] { sessions.update(member.id, streams[i]) }
            completions.append(Completion(member.incoming, reply(member.incoming.request, results[i], only: nil)))
        }
        return completions
    }

    /// The reply to `infer` or `session.step`: `outputs`, only those named in `only` when given.
    private func reply(_ request: Request, _ result: Result<[NamedTensor], RecurError>, only: [String]?) -> Result<[[UInt8]], WireError> {
        switch result {
        case .failure(let error):
            return .failure(WireError(error))
        case .success(let outputs):
            var encoder = ReplyEncoder(binary: request.binary)
            var entries: [String: JSONValue] = [:]
            for output in outputs where only?.contains(output.name) ?? true {
                entries[output.name] = encoder.encode(output.tensor)
            }
            return .success(ReplyEncoder.success(id: request.id, ["outputs": .object(entries)], frames: encoder.frames))
        }
    }
}
