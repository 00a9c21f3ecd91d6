import ArgumentParser
import Foundation
import HubSyncCore
import HubSyncCrypto
import HubSyncStore

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create this device's identity and store, and print its device ID.",
        discussion: "Refuses, changing nothing, when the data directory already holds an identity.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "A name for this device, shown to the other devices (e.g. \"laptop\").")
    var name: String?

    func run() throws {
        let dir = common.directory
        let identity = try guarded { try Identity.create(in: dir.url) }
        let store = try guarded { try Store(path: dir.storePath, device: identity.deviceID) }
        _ = store
        let name = self.name ?? ProcessInfo.processInfo.hostName
        let device: Value = ["name": .string(name), "device_id": .string(identity.deviceID.description)]
        try guarded { try Data((JSON.serialize(device) + "\n").utf8).write(to: URL(fileURLWithPath: dir.devicePath)) }
        if output.json {
            printJSON(["device_id": .string(identity.deviceID.description), "name": .string(name), "data": .string(dir.path)])
        } else {
            print("Created HubSync device \"\(name)\" in \(dir.path)")
            print("Device ID: \(identity.deviceID)")
        }
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
