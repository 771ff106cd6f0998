import ArgumentParser
import Foundation
import Recur
import RecurZMQ

/// `recur keygen`: a CURVE key pair for recurd or its clients, as Z85 text files.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Generate a CURVE key pair: PREFIX.public and PREFIX.secret (Z85, one key per file).",
        discussion: """
            The server reads its secret file with `recurd --curve-secret-key PREFIX.secret`; a client's \
            PREFIX.public goes into the file or directory given to `recurd --curve-allowed`.
            """)

    @Argument(help: "Path prefix of the two files to write.") var prefix: String
    @Flag(help: "Replace existing files.") var force = false

    func run() throws {
        let pair = try CurveKeyPair.generate()
        let files = [(prefix + ".public", pair.publicKey, 0o644), (prefix + ".secret", pair.secretKey, 0o600)]
        for (path, _, _) in files where !force && FileManager.default.fileExists(atPath: path) {
            throw CommandFailure(RecurError(.io, "\(path) exists; pass --force to replace it"))
        }
        for (path, key, mode) in files {
            // Created with its final permissions, so the secret is never readable by others.
            guard FileManager.default.createFile(atPath: path, contents: Data((key + "\n").utf8),
                                                 attributes: [.posixPermissions: mode]) else {
                throw CommandFailure(RecurError(.io, "cannot write \(path)"))
            }
        }
        print("wrote \(prefix).public and \(prefix).secret")
    }
}
