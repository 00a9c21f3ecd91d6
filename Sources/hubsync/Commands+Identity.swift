import ArgumentParser
import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncStore

struct InitCommand: ParsableCommand {
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

    func run() throws {
        let dir = common.directory
        if household {
            let identity = try dir.identity()
            try dir.lockExclusively(for: "`init --household`")
            let (household, recovery) = try guarded { try Household.create(in: dir.url) }
            if try guarded({ try MembershipFiles.loadSecrets(in: dir.path) }) == nil {
                _ = try guarded { try MembershipFiles.found(founder: identity.signingKey, household: household, time: Store.systemClock(), in: dir.path) }
            }
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
        let (household, recovery) = try guarded { try Household.create(in: dir.url) }
        // This device founds its household; `pair join` on it later adopts another household instead.
        _ = try guarded { try MembershipFiles.found(founder: identity.signingKey, household: household, time: Store.systemClock(), in: dir.path) }
        let name = self.name ?? ProcessInfo.processInfo.hostName
        let device: Value = ["name": .string(name), "device_id": .string(identity.deviceID.description)]
        try guarded { try Data((JSON.serialize(device) + "\n").utf8).write(to: URL(fileURLWithPath: dir.file(DataDirectory.deviceFile))) }
        if output.json {
            printJSON(["device_id": .string(identity.deviceID.description), "name": .string(name), "data": .string(dir.path),
                       "recovery_key": .string(recovery.description)])
        } else {
            print("Created HubSync device \"\(name)\" in \(dir.path)")
            print("Device ID: \(identity.deviceID)")
            printRecoveryKey(recovery)
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
