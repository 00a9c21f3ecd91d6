import ArgumentParser
import Foundation
import HubSyncCore
import HubSyncCrypto
import HubSyncStore

/// Options every command takes.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: ArgumentHelp(
        "The device's data directory (default: $HUBSYNC_DATA, else ~/.local/share/hubsync).", valueName: "DIR"))
    var dataPath: String?

    var directory: DataDirectory {
        if let dataPath { return DataDirectory(path: dataPath) }
        if let env = ProcessInfo.processInfo.environment["HUBSYNC_DATA"], !env.isEmpty { return DataDirectory(path: env) }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        return DataDirectory(path: home + "/.local/share/hubsync")
    }
}

/// The `--json` flag of commands whose output has a JSON form.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON instead of text.")
    var json = false
}

/// A device's data directory: identity key, store, device description.
struct DataDirectory {
    let path: String
    var url: URL { URL(fileURLWithPath: path) }
    var storePath: String { path + "/store.sqlite" }
    var devicePath: String { path + "/device.json" }

    /// The identity, or a failure saying how to create one.
    func identity() throws(CLIError) -> Identity {
        guard Identity.exists(in: url) else {
            throw .failure("no HubSync device in \(path); run `hubsync init --data \(path)` first")
        }
        return try guarded { try Identity.load(from: url) }
    }

    /// Opens the device's store (the identity must exist).
    func openStore() throws(CLIError) -> Store {
        let id = try identity()
        return try guarded { try Store(path: storePath, device: id.deviceID) }
    }

    /// The name given at `init`, if any.
    var deviceName: String? {
        guard let data = FileManager.default.contents(atPath: devicePath),
              let v = try? JSON.parse([UInt8](data)) else { return nil }
        return v.objectValue?["name"]?.stringValue
    }
}
