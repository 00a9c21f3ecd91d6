import ArgumentParser
import Foundation
import HubSyncAgent
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
        // A name is checked before anything is made; the host's name is cleaned instead.
        var name = DeviceNames.displayable(ProcessInfo.processInfo.hostName) ?? "HubSync device"
        if let given = self.name { name = try guarded { try DeviceNames.validated(given) } }
        // A store or household without its identity is a lost key, not a new device: refused before anything is written.
        if !Identity.exists(in: dir.url), let lost = dir.lostIdentity(changed: true) { throw lost }
        let identity = try guarded { try Identity.create(in: dir.url) }
        try dir.lockExclusively(for: "`init`")
        let store = try guarded { try Store(path: dir.storePath, device: identity.deviceID) }
        // This device founds its household; `pair join` on it later adopts another household instead.
        let recovery = try await addRecoveryKey(in: dir, identity: identity)
        try guarded { try DeviceNames.saveConfiguredName(name, of: identity.deviceID, in: dir) }
        // The name as a record, so every device this one syncs with learns it.
        _ = try guarded { try store.write(.merge([DeviceNames.record(naming: name, identity: identity, updating: nil)])) }
        // Every file in the directory private, the store SQLite made with the umask's mode included.
        try guarded { try dir.keepPrivate() }
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
            // "device_name" as status and peers name it; "name" stays for scripts written before.
            var o: [String: Value] = ["device_id": .string(identity.deviceID.description),
                                      "device_name": dir.deviceName.map { .string($0) } ?? .null]
            if let name = dir.deviceName { o["name"] = .string(name) }
            printJSON(.object(o))
        } else {
            print(identity.deviceID)
        }
    }
}

struct NameCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "name",
        abstract: "Show or change this device's name, which the other devices show beside its ID.",
        discussion: """
            The name is plain text of 1 to 64 characters. It travels to every device this one syncs \
            with, signed by this device, so no other device can change it; they show it quoted, after \
            this device's ID. Through the agent when it runs.
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The new name (without it, the current name is printed).") var name: String?

    func run() throws {
        let dir = common.directory
        let identity = try dir.identity()
        guard let name else {
            let current = dir.deviceName
            if output.json {
                printJSON(["device_id": .string(identity.deviceID.description), "device_name": current.map { .string($0) } ?? .null])
            } else {
                print(current.flatMap(DeviceNames.displayable).map { JSON.serialize(.string($0)) }
                      ?? "This device has no name; give it one with `hubsync name NAME`")
            }
            return
        }
        let valid = try guarded { try DeviceNames.validated(name) }
        switch try dir.writer() {
        case .agent(let agent):
            _ = try agent.call("PUT", "/v1/device", body: ["name": .string(valid)])
        case .direct(let store):
            try guarded { try DeviceNames.saveConfiguredName(valid, of: identity.deviceID, in: dir) }
            let existing = try guarded { try store.get(DeviceNames.recordKey(of: identity.deviceID)) }
            let record = DeviceNames.record(naming: valid, identity: identity, updating: existing)
            _ = try guarded { try store.write(.merge([record])) }
        }
        if output.json {
            printJSON(["device_id": .string(identity.deviceID.description), "device_name": .string(valid)])
        } else if !Quiet.isOn {
            print("This device is now \(JSON.serialize(.string(valid))); the other devices show it once they sync with it")
        }
    }
}
