import ArgumentParser
import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create this device's identity, store and household, and print its device ID and recovery key.",
        discussion: """
            Refuses, changing nothing, when the data directory already holds an identity. The household's \
            recovery key is printed once and stored nowhere: write it down; with it, any backup of the \
            household restores onto a new machine. --household adds household secrets to a data \
            directory made before backups existed.
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "A name for this device, shown to the other devices (e.g. \"laptop\").")
    var name: String?
    @Flag(help: "Only create the household secrets (and recovery key) for an existing device.")
    var household = false

    func run() async throws {
        let dir = common.directory
        if household {
            let identity = try dir.identity()
            try dir.lockExclusively(for: "`init --household`")
            let recovery = try await addRecoveryKey(in: dir, identity: identity)
            if output.json {
                printJSON(["device_id": .string(identity.deviceID.description), "data": .string(dir.path),
                           "recovery_key": .string(recovery.description)])
            } else {
                printRecoveryKey(recovery)
            }
            return
        }
        let identity = try guarded { try Identity.create(in: dir.url) }
        try dir.lockExclusively(for: "`init`")
        let store = try guarded { try Store(path: dir.storePath, device: identity.deviceID) }
        _ = store
        // This device founds its household; `pair join` on it later adopts another household instead.
        let recovery = try await addRecoveryKey(in: dir, identity: identity)
        let name = self.name ?? ProcessInfo.processInfo.hostName
        let device: Value = ["name": .string(name), "device_id": .string(identity.deviceID.description)]
        try guarded { try dir.writeAtomically(Array((JSON.serialize(device) + "\n").utf8), to: DataDirectory.deviceFile, mode: 0o644) }
        if output.json {
            printJSON(["device_id": .string(identity.deviceID.description), "name": .string(name), "data": .string(dir.path),
                       "recovery_key": .string(recovery.description)])
        } else {
            print("Created HubSync device \"\(name)\" in \(dir.path)")
            print("Device ID: \(identity.deviceID)")
            printRecoveryKey(recovery)
        }
    }

    /// Gives the household of `dir` a recovery key, creating and founding the household when it
    /// has none; this process holds the writer lock.
    func addRecoveryKey(in dir: DataDirectory, identity: Identity) async throws(CLIError) -> RecoveryKey {
        do {
            return try await Household(directory: dir, identity: identity).addRecoveryKey(time: Store.systemClock())
        } catch {
            throw CLIError(error)
        }
    }

    func printRecoveryKey(_ key: RecoveryKey) {
        print("Household recovery key (shown only now; write it down and keep it safe, it opens every backup):")
        print("  \(key)")
    }
}

struct IdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "id", abstract: "Print this device's ID.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let dir = common.directory
        let identity = try dir.identity()
        if output.json {
            var o: [String: Value] = ["device_id": .string(identity.deviceID.description)]
            if let name = dir.deviceName { o["name"] = .string(name) }
            printJSON(.object(o))
        } else {
            print(identity.deviceID)
        }
    }
}
