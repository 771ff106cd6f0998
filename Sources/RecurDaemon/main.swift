import ArgumentParser
import Foundation
import Logging
import Recur

/// `recurd`: serves the models of a directory over ZeroMQ (protocol.md; options in docs/daemon.md).
struct RecurDaemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recurd",
        abstract: "Serve Recur models over ZeroMQ (protocol.md).",
        version: recurVersion)

    @Option(help: "ZeroMQ endpoint to bind.") var bind = "tcp://127.0.0.1:5555"
    @Option(help: "Directory whose *.safetensors files are loaded at start, each under its file name.") var models: String
    @Option(name: .customLong("plugin"), help: ArgumentHelp("Layer-type plugin (shared library) to load before the models; repeatable. One that is refused stops the start.", valueName: "path"))
    var plugins: [String] = []
    @Option(help: "Worker threads (default: the number of cores).") var workers: Int?
    @Option(help: "Most infer / session.step requests computed as one batch (1: no batching).") var maxBatch = 16
    @Option(help: "Milliseconds a request may wait for others to join its batch.") var maxDelayMs = 2.0
    @Option(help: "When a request waits for others: 'when-busy', only while a batch like it is being computed (a lone request never waits); 'always', up to --max-delay-ms every time.")
    var batchWait = BatchWait.whenBusy
    @Option(help: "Most requests accepted and not yet answered; past it, requests get 'busy'.") var maxQueue = 1024
    @Option(help: "Largest message frame in bytes (ZMQ_MAXMSGSIZE, which libzmq checks per frame); a larger one drops the connection.") var maxMessageBytes: Int64 = 256 << 20
    @Option(help: "Most elements of one tensor.") var maxTensorElements = 16 << 20
    @Option(help: "Most elements of all of a request's tensors.") var maxRequestElements = 32 << 20
    @Option(help: "Most steps T of an input (and prompt plus max_tokens of generate).") var maxSteps = 100_000
    @Option(help: "Most max_tokens of generate.") var maxGenerateTokens = 10_000
    @Option(help: "Most open sessions.") var maxSessions = 1024
    @Option(help: "Seconds a session may stay idle before it is closed.") var sessionTimeout = 300.0
    @Option(help: "Seconds without requests after which the large buffers kept between passes go back to the system (0: never).")
    var releaseIdleS = 30.0
    @Option(help: "CURVE: file with the server's Z85 secret key (from `recur keygen`); turns CURVE on.") var curveSecretKey: String?
    @Option(help: "CURVE: a file of allowed client public keys, or a directory of *.public files.") var curveAllowed: String?
    @Flag(help: "Let `load` read model files anywhere, not only inside the models directory.") var loadAnyPath = false
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical") }
        guard (workers ?? 1) >= 1 else { throw ValidationError("--workers must be at least 1") }
        guard maxBatch >= 1 else { throw ValidationError("--max-batch must be at least 1") }
        guard maxDelayMs.isFinite, maxDelayMs >= 0, maxDelayMs <= 10_000 else { throw ValidationError("--max-delay-ms must be in 0 … 10000") }
        guard maxQueue >= 1 else { throw ValidationError("--max-queue must be at least 1") }
        guard maxMessageBytes >= 1024 else { throw ValidationError("--max-message-bytes must be at least 1024") }
        guard maxTensorElements >= 1, maxRequestElements >= 1, maxSteps >= 1, maxGenerateTokens >= 0, maxSessions >= 0 else {
            throw ValidationError("limits must be positive")
        }
        // Bounded so that it converts to a Duration (in milliseconds) without overflowing.
        guard sessionTimeout.isFinite, sessionTimeout > 0, sessionTimeout <= 1e9 else {
            throw ValidationError("--session-timeout must be a positive number of seconds, at most 1e9")
        }
        guard releaseIdleS.isFinite, releaseIdleS >= 0, releaseIdleS <= 1e9 else {
            throw ValidationError("--release-idle-s must be a number of seconds in 0 … 1e9")
        }
        guard (curveSecretKey == nil) == (curveAllowed == nil) else {
            throw ValidationError("--curve-secret-key and --curve-allowed go together")
        }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "recurd")
        do {
            var curve: CurveConfig?
            if let curveSecretKey, let curveAllowed {
                curve = try CurveConfig(secretKeyFile: curveSecretKey, allowed: curveAllowed)
            }
            let config = DaemonConfig(
                bind: bind, modelsDirectory: models,
                workers: workers ?? ProcessInfo.processInfo.activeProcessorCount,
                maxBatch: maxBatch, maxDelay: .microseconds(Int64(maxDelayMs * 1000)), batchWait: batchWait, maxQueue: maxQueue,
                limits: RequestLimits(maxTensorElements: maxTensorElements, maxRequestElements: maxRequestElements,
                                      maxSteps: maxSteps, maxGenerateTokens: maxGenerateTokens),
                maxSessions: maxSessions, sessionTimeout: .milliseconds(Int64(sessionTimeout * 1000)),
                releaseIdle: releaseIdleS > 0 ? .milliseconds(Int64(releaseIdleS * 1000)) : nil,
                maxMessageBytes: maxMessageBytes, curve: curve, loadAnyPath: loadAnyPath)
            for path in plugins {
                let plugin = try LayerRegistry.shared.loadPlugin(path: path)
                logger.notice("plugin loaded", metadata: ["path": "\(path)", "name": "\(plugin.name)", "types": "\(plugin.typeNames.joined(separator: ","))"])
            }
            let registry = try loadDirectory(models, logger: logger)
            let server = try Server(config: config, models: registry, logger: logger)
            logger.notice("serving", metadata: [
                "bind": "\(bind)", "models": "\(registry.all.map(\.name).joined(separator: ","))",
                "workers": "\(config.workers)", "max_batch": "\(maxBatch)", "curve": "\(curve != nil)",
            ])
            try server.run()
        } catch {
            logger.critical("cannot serve: \(error)")
            throw ExitCode.failure
        }
    }

    /// Loads every `*.safetensors` file of `directory` under its name without the extension. A
    /// file that does not load is logged and skipped, so one bad file does not stop the service.
    private func loadDirectory(_ directory: String, logger: Logger) throws -> ModelRegistry {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw ConfigurationError("--models \(directory): \(error.localizedDescription)")
        }
        let registry = ModelRegistry()
        for file in names.sorted() where file.hasSuffix(".safetensors") {
            let name = String(file.dropLast(".safetensors".count))
            do {
                registry.install(try Model(path: directory + "/" + file), as: name)
            } catch {
                logger.error("model not loaded", metadata: ["file": "\(file)", "error": "\(error.message)"])
            }
        }
        return registry
    }
}

extension BatchWait: ExpressibleByArgument {}

RecurDaemon.main()
