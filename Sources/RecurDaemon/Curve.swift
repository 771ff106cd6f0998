import Foundation
import RecurZMQ

/// CURVE security: the server's secret key and the public keys of the clients it lets in.
struct CurveConfig: Sendable {
    let secretKey: [UInt8]
    let allowedClients: Set<[UInt8]>

    /// Reads `--curve-secret-key FILE` and `--curve-allowed DIR|FILE`. Key files hold Z85 keys of
    /// 40 characters, one per line; blank lines and lines starting with `#` are skipped. A
    /// directory contributes every `*.public` file in it.
    init(secretKeyFile: String, allowed: String) throws(ConfigurationError) {
        let secrets = try CurveConfig.keys(in: secretKeyFile)
        guard secrets.count == 1, let secret = secrets.first else {
            throw ConfigurationError("\(secretKeyFile): expected exactly one Z85 secret key, found \(secrets.count)")
        }
        secretKey = secret
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: allowed, isDirectory: &isDirectory) else {
            throw ConfigurationError("--curve-allowed \(allowed): no such file or directory")
        }
        var files = [allowed]
        if isDirectory.boolValue {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: allowed) } catch {
                throw ConfigurationError("--curve-allowed \(allowed): \(error.localizedDescription)")
            }
            files = names.filter { $0.hasSuffix(".public") }.sorted().map { allowed + "/" + $0 }
        }
        var clients = Set<[UInt8]>()
        for file in files { clients.formUnion(try CurveConfig.keys(in: file)) }
        guard !clients.isEmpty else { throw ConfigurationError("--curve-allowed \(allowed): no client public keys found") }
        allowedClients = clients
    }

    private static func keys(in path: String) throws(ConfigurationError) -> [[UInt8]] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigurationError("\(path): cannot read key file (\(error.localizedDescription))")
        }
        var keys: [[UInt8]] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let key = decodeZ85Key(trimmed) else {
                throw ConfigurationError("\(path) line \(number + 1): not a Z85 key of 40 characters")
            }
            keys.append(key)
        }
        return keys
    }
}

/// A start-up problem with the options or the files they name.
struct ConfigurationError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
