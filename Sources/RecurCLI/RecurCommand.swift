import ArgumentParser
import Recur

/// `recur`: the command-line tool (installed as the `recur-cli` binary; bin/recur runs it).
@main
struct RecurCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recur",
        abstract: "Describe, run and train Recur models.",
        version: recurVersion,
        subcommands: [DescribeCommand.self, RunCommand.self, TrainCommand.self, KeygenCommand.self, BenchCommand.self]
    )

    @OptionGroup var plugins: PluginOptions

    // ArgumentParser validates every command on the way to the subcommand, so the plugins are
    // loaded before any subcommand runs.
    func validate() throws {
        try plugins.load()
    }
}

/// `recur --plugin PATH …` (repeatable): layer-type plugins to load before the subcommand runs
/// (docs/plugins.md).
struct PluginOptions: ParsableArguments {
    @Option(name: .customLong("plugin"), help: ArgumentHelp("Load a layer-type plugin (a shared library) first; repeatable.", valueName: "path"))
    var paths: [String] = []

    /// Registers every plugin's types with the engine, or fails naming the plugin that was refused.
    func load() throws {
        for path in paths {
            do { try LayerRegistry.shared.loadPlugin(path: path) } catch { throw CommandFailure(error) }
        }
    }
}

/// Turns an engine error into a failure ArgumentParser prints as "Error: …" with exit code 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String

    init(_ error: RecurError) { description = error.message }
}
