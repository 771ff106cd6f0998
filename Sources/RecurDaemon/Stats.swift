import Recur

/// What `stats` reports; kept by the I/O thread alone, which sees every request arrive and leave.
struct Stats {
    /// Latencies kept per op for the percentiles: the most recent ones.
    static let window = 4096

    private let started = ContinuousClock.now
    /// op → outcome ("ok" or an error code) → count.
    private var counts: [String: [String: Int]] = [:]
    /// op → recent latencies in milliseconds, a ring of `window`; "all" holds every op's.
    private var latencies: [String: (values: [Double], next: Int)] = [:]
    /// Requests per computed batch of `infer` / `session.step` → how many such batches.
    private var batchSizes: [Int: Int] = [:]

    mutating func record(op: String, outcome: String, received: ContinuousClock.Instant) {
        counts[op, default: [:]][outcome, default: 0] += 1
        let elapsed = ContinuousClock.now - received
        let milliseconds = Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) * 1e-15
        for key in [op, "all"] {
            var ring = latencies[key] ?? ([], 0)
            if ring.values.count < Stats.window {
                ring.values.append(milliseconds)
            } else {
                ring.values[ring.next] = milliseconds
            }
            ring.next = (ring.next + 1) % Stats.window
            latencies[key] = ring
        }
    }

    mutating func recordBatch(size: Int) {
        batchSizes[size, default: 0] += 1
    }

    /// Nearest-rank percentile of `values` (sorted ascending), p in (0, 1].
    private static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    /// The `stats` reply fields (docs/daemon.md describes each).
    func json(queueDepth: Int, maxQueue: Int, sessions: Int, models: Int) -> [String: JSONValue] {
        var requests: [String: JSONValue] = [:]
        for (op, outcomes) in counts {
            requests[op] = .object(outcomes.mapValues { .int($0) })
        }
        var latency: [String: JSONValue] = [:]
        for (op, ring) in latencies {
            let sorted = ring.values.sorted()
            latency[op] = .object([
                "p50": .double(Stats.percentile(sorted, 0.5)),
                "p99": .double(Stats.percentile(sorted, 0.99)),
                "samples": .int(sorted.count),
            ])
        }
        let batches = batchSizes.values.reduce(0, +)
        let batched = batchSizes.reduce(0) { $0 + $1.key * $1.value }
        let uptime = ContinuousClock.now - started
        return [
            "requests": .object(requests),
            "latency_ms": .object(latency),
            "batches": .object([
                "count": .int(batches),
                "requests": .int(batched),
                "mean_size": .double(batches == 0 ? 0 : Double(batched) / Double(batches)),
                "max_size": .int(batchSizes.keys.max() ?? 0),
                "sizes": .object(Dictionary(uniqueKeysWithValues: batchSizes.map { (String($0.key), JSONValue.int($0.value)) })),
            ]),
            "queue_depth": .int(queueDepth),
            "max_queue": .int(maxQueue),
            "sessions_open": .int(sessions),
            "models_loaded": .int(models),
            "uptime_s": .double(Double(uptime.components.seconds)),
        ]
    }
}
