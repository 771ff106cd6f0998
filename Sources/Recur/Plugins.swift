import CRecurPlugin

/// A plugin library whose layer types a registry accepted. The library stays loaded for the life
/// of the process: models made with its types may live on in any thread.
public struct LoadedPlugin: Sendable, Equatable {
    /// The plugin's own name (`recur_plugin_info.name`).
    public let name: String
    public let path: String
    /// The layer types it registered, in the order of its table.
    public let typeNames: [String]
}

/// Bytes of the message buffer a plugin function may write to (`error_capacity`).
let pluginErrorCapacity = 1024

/// The NUL-terminated message in a plugin's error buffer, whatever the plugin left there: cut at
/// the buffer's end, invalid UTF-8 replaced.
func pluginMessage(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

extension LayerRegistry {
    /// Loads the plugin library at `path` (Include/recur_plugin.h, docs/plugins.md) and registers
    /// its layer types, all or none. A path without a `/` is taken relative to the working
    /// directory, never looked up in the system's library folders.
    ///
    /// Refused, with nothing registered and the library closed again: a file that cannot be
    /// opened as a shared library (`io`); no `recur_plugin_init`, another plugin ABI version or
    /// struct size, a plugin whose init refuses (`unsupported`); a malformed type table (`format`);
    /// a type name the registry already has (`invalidArgument`). Every message names the path.
    @discardableResult
    public func loadPlugin(path: String) throws(RecurError) -> LoadedPlugin {
        let target = path.contains("/") ? path : "./" + path
        var message = [CChar](repeating: 0, count: pluginErrorCapacity)
        var handle: UnsafeMutableRawPointer?
        var entry: recur_plugin_entry?
        let opened = rp_library_open(target, &handle, &entry, &message, message.count)
        guard opened == RP_OPENED, let handle, let entry else {
            if opened == RP_NO_ENTRY_POINT {
                throw RecurError(.unsupported, "plugin \(path): not a Recur plugin: it exports no \(RECUR_PLUGIN_ENTRY_POINT) (\(pluginMessage(message)))")
            }
            throw RecurError(.io, "plugin \(path): cannot be loaded: \(pluginMessage(message))")
        }
        do throws(RecurError) {
            let (name, kinds) = try PluginTable.read(entry: entry, path: path)
            do throws(RecurError) {
                try register(all: kinds)
            } catch {
                throw RecurError(error.kind, "plugin \(path) ('\(name)'): \(error.message)")
            }
            return LoadedPlugin(name: name, path: path, typeNames: kinds.map(\.typeName))
        } catch {
            rp_library_close(handle)
            throw error
        }
    }
}

/// Reading and checking what a plugin's entry point returns.
enum PluginTable {
    static func read(entry: recur_plugin_entry, path: String) throws(RecurError) -> (String, [PluginLayerKind]) {
        var message = [CChar](repeating: 0, count: pluginErrorCapacity)
        guard let info = entry(UInt32(RECUR_PLUGIN_ABI_VERSION), &message, message.count) else {
            let reason = pluginMessage(message)
            throw RecurError(.unsupported, "plugin \(path): refused to load: \(reason.isEmpty ? "its \(RECUR_PLUGIN_ENTRY_POINT) returned NULL without a message" : reason)")
        }
        // Only the first field is the same in every ABI version: read it alone before the rest.
        let abiVersion = UnsafeRawPointer(info).load(as: UInt32.self)
        guard abiVersion == RECUR_PLUGIN_ABI_VERSION else {
            throw RecurError(.unsupported, "plugin \(path): built for plugin ABI version \(abiVersion); this Recur speaks version \(RECUR_PLUGIN_ABI_VERSION)")
        }
        let table = info.pointee
        guard table.info_size == MemoryLayout<recur_plugin_info>.size, table.type_size == MemoryLayout<recur_layer_type>.size else {
            throw RecurError(.unsupported, "plugin \(path): struct sizes \(table.info_size)/\(table.type_size) are not plugin ABI \(RECUR_PLUGIN_ABI_VERSION)'s \(MemoryLayout<recur_plugin_info>.size)/\(MemoryLayout<recur_layer_type>.size)")
        }
        func malformed(_ what: String) -> RecurError { RecurError(.format, "plugin \(path): \(what)") }
        guard let namePointer = table.name, let name = String(validatingCString: namePointer), !name.isEmpty else {
            throw malformed("its name is NULL, empty or not UTF-8")
        }
        guard table.type_count >= 1, let types = table.types else { throw malformed("'\(name)' has no layer types") }
        var kinds: [PluginLayerKind] = []
        for (i, type) in UnsafeBufferPointer(start: types, count: Int(table.type_count)).enumerated() {
            guard let typeName = type.name.flatMap(String.init(validatingCString:)), isPluginName(typeName) else {
                throw malformed("'\(name)' type \(i): the name must be 1 … \(RECUR_PLUGIN_MAX_NAME) characters from [A-Za-z0-9_]")
            }
            guard let create = type.create else { throw malformed("'\(name)' type '\(typeName)' has no create function") }
            let body: PluginLayerKind.Body
            switch (type.forward, type.step) {
            case (let forward?, nil): body = .perStep(forward)
            case (nil, let step?): body = .recurrent(step)
            default: throw malformed("'\(name)' type '\(typeName)' must have exactly one of forward (per-step) and step (recurrent)")
            }
            kinds.append(PluginLayerKind(typeName: typeName, pluginName: name, create: create, destroy: type.destroy, body: body))
        }
        return (name, kinds)
    }
}

/// True for the names the plugin ABI allows (types, parameters, states): 1 … 63 of [A-Za-z0-9_].
func isPluginName(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.count <= Int(RECUR_PLUGIN_MAX_NAME)
        && name.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x5F }
}
