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
}

/// Turns an engine error into a failure ArgumentParser prints as "Error: …" with exit code 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String

    init(_ error: RecurError) { description = error.message }
}
