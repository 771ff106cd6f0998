import CRecurAPI
import CZMQ
import Foundation
import Logging
import Recur
import RecurZMQ

/// Everything recurd's options decide.
struct DaemonConfig: Sendable {
    var bind: String
    var modelsDirectory: String
    var workers: Int
    /// Most requests computed as one batch; 1 turns batching off.
    var maxBatch: Int
    /// How long a request may wait for others to join its batch.
    var maxDelay: Duration
    var batchWait: BatchWait
    /// Most requests accepted and not yet answered; past it, `busy`.
    var maxQueue: Int
    var limits: RequestLimits
    var maxSessions: Int
    var sessionTimeout: Duration
    /// How long recurd must have had no request before it gives back the buffers kept between
    /// passes (`ReusedFloats`); nil: never.
    var releaseIdle: Duration?
    /// ZMQ_MAXMSGSIZE: larger messages drop the connection.
    var maxMessageBytes: Int64
    var curve: CurveConfig?
    /// When false, `load` reads only files inside the models directory.
    var loadAnyPath: Bool
}

/// When a batch that is not full waits for more requests (up to `DaemonConfig.maxDelay`).
enum BatchWait: String, Sendable, CaseIterable {
    /// Only while a batch of its key is being computed: company is coming then, and a lone
    /// client's request is never held (as Nagle's algorithm holds small segments only while
    /// data is unacknowledged).
    case whenBusy = "when-busy"
    /// Every time, for the whole delay: the largest batches, at the price of every request's latency.
    case always
}

/// The server's I/O thread: owns every ZeroMQ socket, decodes requests, forms batches, hands work
/// to the pool and sends the answers back. Also keeps the statistics, which it alone updates.
final class Server {
    private let config: DaemonConfig
    private let logger: Logger
    private let models: ModelRegistry
    private let sessions: SessionStore
    private let work = WorkQueue()
    private let completions: CompletionQueue
    private let stopSignals: StopSignals
    private let context: Context
    private let router: Socket
    /// The ZAP handler's socket when CURVE is on.
    private let authenticator: Socket?

    private struct PendingBatch {
        let model: Model
        var members: [Incoming]
        let deadline: ContinuousClock.Instant
    }

    private var pending: [BatchKey: PendingBatch] = [:]
    /// Sessions a request is working on; later requests on them wait in `waiting`, in order.
    private var busySessions: Set<String> = []
    private var waiting: [String: [Incoming]] = [:]
    /// Requests accepted and not yet answered.
    private var outstanding = 0
    /// Jobs handed to the pool and not yet finished.
    private var runningJobs = 0
    /// Of those, the batches, by key: while one is computed, later requests of its key wait for
    /// company (see `flushBatches`).
    private var runningBatches: [BatchKey: Int] = [:]
    private var stopping = false
    /// When the last request was answered, while none is outstanding and the kept buffers have not
    /// been given back since; nil otherwise.
    private var idleSince: ContinuousClock.Instant?
    private var stats = Stats()
    private var nextSweep = ContinuousClock.now

    init(config: DaemonConfig, models: ModelRegistry, logger: Logger) throws {
        self.config = config
        self.logger = logger
        self.models = models
        sessions = SessionStore(capacity: config.maxSessions, idleTimeout: config.sessionTimeout)
        stopSignals = try StopSignals()
        completions = CompletionQueue(wakeUp: try WakeUp())
        context = try Context()
        if config.curve != nil {
            // The ZAP handler must be bound before any CURVE socket accepts a connection.
            let zap = try Socket(context, .rep)
            try zap.bind("inproc://zeromq.zap.01")
            authenticator = zap
        } else {
            authenticator = nil
        }
        router = try Socket(context, .router)
        try router.setOption(ZMQ_MAXMSGSIZE, config.maxMessageBytes)
        try router.setOption(ZMQ_LINGER, Int32(2000))
        if let curve = config.curve {
            try router.setOption(ZMQ_CURVE_SERVER, Int32(1))
            try router.setOption(ZMQ_CURVE_SECRETKEY, bytes: curve.secretKey)
        }
        try router.bind(config.bind)
    }

    /// Serves until SIGINT or SIGTERM, then answers what is in flight and returns.
    func run() throws {
        let executor = Executor(models: models, sessions: sessions,
                                loadDirectory: config.loadAnyPath ? nil : config.modelsDirectory, logger: logger)
        for _ in 0..<config.workers {
            let (work, completions) = (self.work, self.completions)
            Thread.detachNewThread {
                while true {
                    let job = work.pop()
                    if case .stop = job { return }
                    completions.post(executor.run(job))
                }
            }
        }
        var items: [PollItem] = [.socket(router), .descriptor(completions.wakeUp.descriptor), .descriptor(stopSignals.descriptor)]
        if let authenticator { items.append(.socket(authenticator)) }
        while !(stopping && outstanding == 0) {
            let ready = try poll(items, timeoutMilliseconds: pollTimeout())
            if ready[2], let signal = stopSignals.take() {
                stopping = true
                logger.notice("stopping: answering requests in flight", metadata: ["signal": "\(signal)", "in_flight": "\(outstanding)"])
            }
            if ready[1] {
                for job in completions.take() {
                    runningJobs -= 1
                    switch job {
                    case .answered(let replies, let key):
                        if let key, let count = runningBatches[key] { runningBatches[key] = count > 1 ? count - 1 : nil }
                        replies.forEach(finish)
                    case .decoded(let route, let info, let request):
                        outstanding -= 1  // counted while it waited to be decoded; admit counts it anew
                        admit(request, info, route, accepted: true)
                    }
                }
            }
            if ready[0] { try receiveRequests() }
            if ready.count > 3 && ready[3], let authenticator {
                do { try authenticate(authenticator) } catch {
                    logger.error("ZAP handler failed; the client is not let in", metadata: ["error": "\(error)"])
                }
            }
            flushBatches(all: stopping)
            let now = ContinuousClock.now
            if now >= nextSweep {
                let expired = sessions.expire(except: busySessions)
                if expired > 0 { logger.info("sessions expired", metadata: ["count": "\(expired)"]) }
                if let idleSince, let releaseIdle = config.releaseIdle, now - idleSince >= releaseIdle, runningJobs == 0 {
                    // On a worker: malloc_trim walks the heap, which the I/O thread should not wait for.
                    push(.releaseKeptBuffers)
                    self.idleSince = nil
                }
                nextSweep = now + .milliseconds(200)
            }
        }
        for _ in 0..<config.workers { work.push(.stop) }  // not counted: the pool is closing
        logger.notice("stopped")
    }

    private func pollTimeout() -> Int {
        let now = ContinuousClock.now
        var until = nextSweep
        // A batch past its deadline waits for a free worker, whose completion wakes the poll.
        if runningJobs < config.workers {
            for batch in pending.values where batch.deadline < until { until = batch.deadline }
        }
        guard until > now else { return 0 }
        let wait = until - now
        return Int(wait.components.seconds) * 1000 + Int((wait.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }

    /// Takes every request waiting on the socket, so requests that arrived together can batch.
    private func receiveRequests() throws {
        for _ in 0..<1024 {
            guard let frames = try router.receive(wait: false) else { return }
            guard let delimiter = frames.firstIndex(where: \.isEmpty) else {
                logger.warning("dropped a message without an envelope delimiter (clients use REQ, or DEALER with an empty frame)")
                continue
            }
            let route = Route(envelope: Array(frames[...delimiter]), received: .now)
            accept(Array(frames[(delimiter + 1)...]), route)
        }
    }

    /// Requests whose header frame is larger than this are decoded by a worker, so a large inline
    /// tensor does not hold up the I/O thread.
    static let workerDecodeBytes = 64 << 10

    private func accept(_ frames: [[UInt8]], _ route: Route) {
        guard (frames.first?.count ?? 0) > Server.workerDecodeBytes else {
            let (info, request) = RequestDecoder.decode(frames, limits: config.limits)
            return admit(request, info, route)
        }
        if let refusal = refusal() {
            // Not decoded yet: the reply cannot echo an id, and stats count it under "invalid".
            return answer(.failure(refusal), RequestHeader(), route)
        }
        outstanding += 1
        push(.decode(frames, route, config.limits))
    }

    /// Why a request that needs work cannot be taken now, if it cannot.
    private func refusal() -> WireError? {
        if stopping { return WireError(.busy, "recurd is shutting down") }
        guard outstanding < config.maxQueue else {
            return WireError(.busy, "\(outstanding) requests are queued, the configured limit; retry later")
        }
        return nil
    }

    /// Replies at once, from the I/O thread.
    private func answer(_ result: Result<[[UInt8]], WireError>, _ info: RequestHeader, _ route: Route) {
        switch result {
        case .success(let frames):
            send(route, frames)
            record(op: info.op, outcome: "ok", received: route.received)
        case .failure(let error):
            send(route, ReplyEncoder.failure(id: info.id, error))
            record(op: info.op, outcome: error.code.rawValue, received: route.received)
        }
    }

    /// Takes a decoded request: answers `ping` and `stats` (and failures) at once, queues the rest.
    /// `accepted`: the request was taken in before it was decoded (by a worker), so neither a full
    /// queue nor a stop signal that came meanwhile refuses it now.
    private func admit(_ decoded: Result<Request, WireError>, _ info: RequestHeader, _ route: Route, accepted: Bool = false) {
        let request: Request
        switch decoded {
        case .success(let r): request = r
        case .failure(let error): return answer(.failure(error), info, route)
        }
        switch request.operation {
        case .ping:
            let fields: [String: JSONValue] = [
                "version": .int(Request.protocolVersion), "abi": .int(Int(RECUR_ABI_VERSION)), "recur": .string(recurVersion),
            ]
            return answer(.success(ReplyEncoder.success(id: request.id, fields)), info, route)
        case .stats:
            let fields = stats.json(queueDepth: outstanding, maxQueue: config.maxQueue, sessions: sessions.count, models: models.all.count)
            return answer(.success(ReplyEncoder.success(id: request.id, fields)), info, route)
        default:
            break
        }
        if !accepted, let refusal = refusal() { return answer(.failure(refusal), info, route) }
        outstanding += 1
        idleSince = nil
        let incoming = Incoming(request: request, route: route, model: nil)
        if let session = request.session, !busySessions.insert(session).inserted {
            waiting[session, default: []].append(incoming)
        } else {
            dispatch(incoming)
        }
    }

    /// Sends a request to the pool, alone or into its batch; answers at once what fails on arrival.
    private func dispatch(_ incoming: Incoming) {
        let request = incoming.request
        let model: Model
        do throws(WireError) {
            switch request.operation {
            case .infer(let name, _, let outputs):
                model = try models.model(name)
                if let unknown = outputs?.first(where: { !model.outputNames.contains($0) }) {
                    throw WireError(.invalidInput, "outputs: '\(unknown)' is not an output of model '\(name)'; it has \(model.outputNames.joined(separator: ", "))")
                }
            case .sessionStep(let id, _):
                model = try sessions.session(id).model
            default:
                push(.single(incoming))
                return
            }
        } catch {
            return finish(Completion(incoming, .failure(error)))
        }
        let bound = Incoming(request: request, route: incoming.route, model: model)
        let key = BatchKey(model: model, request: request)
        if pending[key] == nil {
            pending[key] = PendingBatch(model: model, members: [], deadline: .now + config.maxDelay)
        }
        pending[key]?.members.append(bound)
        if (pending[key]?.members.count ?? 0) >= config.maxBatch { flush(key, parts: config.workers - runningJobs) }
    }

    /// Sends batches on their way. A batch leaves when it is full. Otherwise it needs a free
    /// worker (while every worker is busy it could only wait in the queue, so it keeps growing
    /// instead), and then it leaves once its oldest request has waited `maxDelay` — or, with
    /// `BatchWait.whenBusy`, at once when no batch of its key is being computed, so it waits
    /// only for that batch to finish. A batch that leaves is split evenly over the free workers,
    /// so batching never leaves a core idle. When stopping, everything leaves at once.
    private func flushBatches(all: Bool) {
        let now = ContinuousClock.now
        for (key, batch) in pending {
            let idle = config.workers - runningJobs
            let waitIsOver = batch.deadline <= now || (config.batchWait == .whenBusy && runningBatches[key] == nil)
            if all || batch.members.count >= config.maxBatch || (idle > 0 && waitIsOver) {
                flush(key, parts: idle)
            }
        }
    }

    /// Sends the pending batch of `key` as `parts` jobs (at least one, at most one per request),
    /// or more when that is needed to keep each within `maxBatch` requests.
    private func flush(_ key: BatchKey, parts: Int) {
        guard let batch = pending.removeValue(forKey: key) else { return }
        let count = batch.members.count
        // ⌈count / maxBatch⌉, written so that a huge --max-batch cannot overflow.
        let jobs = max(min(parts, count), 1, count / config.maxBatch + (count % config.maxBatch == 0 ? 0 : 1))
        let size = (count + jobs - 1) / jobs
        for start in stride(from: 0, to: count, by: size) {
            let members = Array(batch.members[start..<min(start + size, count)])
            stats.recordBatch(size: members.count)
            runningBatches[key, default: 0] += 1
            push(.batch(key, batch.model, members))
        }
    }

    private func push(_ job: Job) {
        runningJobs += 1
        work.push(job)
    }

    /// Sends an answer and lets the next request on its session go.
    private func finish(_ completion: Completion) {
        send(completion.route, completion.frames)
        outstanding -= 1
        if outstanding == 0 { idleSince = .now }
        record(op: completion.op, outcome: completion.outcome, received: completion.route.received)
        guard let session = completion.session else { return }
        if var queue = waiting[session], !queue.isEmpty {
            let next = queue.removeFirst()
            waiting[session] = queue.isEmpty ? nil : queue
            dispatch(next)
        } else {
            busySessions.remove(session)
        }
    }

    private func send(_ route: Route, _ frames: [[UInt8]]) {
        do {
            try router.send(route.envelope + frames)
        } catch {
            // The peer may have gone; its answer has nowhere to go, and others carry on.
            logger.warning("reply not sent", metadata: ["error": "\(error)"])
        }
    }

    private func record(op: String, outcome: String, received: ContinuousClock.Instant) {
        stats.record(op: op, outcome: outcome, received: received)
        if outcome == WireError.Code.internal.rawValue {
            logger.error("request failed inside recurd", metadata: ["op": "\(op)"])
        }
        if logger.logLevel <= .debug {
            let elapsed = ContinuousClock.now - received
            logger.debug("request", metadata: ["op": "\(op)", "outcome": "\(outcome)", "latency": "\(elapsed)"])
        }
    }

    /// Answers one ZAP request (ZeroMQ RFC 27): CURVE clients whose public key is allowed pass.
    private func authenticate(_ socket: Socket) throws {
        guard let frames = try socket.receive(wait: false) else { return }
        guard frames.count >= 6, let curve = config.curve else {
            logger.warning("malformed ZAP request", metadata: ["frames": "\(frames.count)"])
            try socket.send([Array("1.0".utf8), frames.count > 1 ? frames[1] : [], Array("500".utf8), Array("malformed ZAP request".utf8), [], []])
            return
        }
        let mechanism = String(decoding: frames[5], as: UTF8.self)
        let address = String(decoding: frames[3], as: UTF8.self)
        let key = frames.count > 6 ? frames[6] : []
        let allowed = mechanism == "CURVE" && curve.allowedClients.contains(key)
        let user = encodeZ85Key(key) ?? ""
        if allowed {
            logger.info("client allowed", metadata: ["address": "\(address)", "key": "\(user)"])
        } else {
            logger.warning("client refused", metadata: ["address": "\(address)", "mechanism": "\(mechanism)", "key": "\(user)"])
        }
        try socket.send([
            Array("1.0".utf8), frames[1],
            Array((allowed ? "200" : "400").utf8), Array((allowed ? "OK" : "client key not allowed").utf8),
            Array(user.utf8), [],
        ])
    }
}
