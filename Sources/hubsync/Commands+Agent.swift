import ArgumentParser
import Foundation
import HubSyncAgent
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncNet
import HubSyncStore
import Logging

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the agent: sync with trusted peers, serve the local API.",
        discussion: """
            Listens for peers (--listen, default 0.0.0.0:7400), dials every trusted peer with a known \
            address, pushes each change at once and repairs gaps by Merkle diffing. The local API \
            (--api, default 127.0.0.1:7401, loopback only) needs the bearer token in DIR/api.token. \
            Once both are bound, DIR/agent.json holds {"pid", "listen", "api"} with the real ports \
            (port 0 picks a free one). The agent holds a lock on DIR while it runs: it is then the \
            only writer of the store, and other commands go through its API; a second agent on DIR is \
            refused, and a command holding the lock (an import) is waited for. Settings come from DIR/config.json; flags override them. \
            SIGTERM or SIGINT stops it cleanly. Unless --no-mdns, it advertises _hubsync._tcp \
            through the system's avahi-daemon and dials trusted peers it finds there; without the \
            daemon it keeps using static and last-known addresses and status says why.
            """)

    @OptionGroup var common: CommonOptions
    @Option(help: ArgumentHelp("Where peers connect.", valueName: "HOST:PORT")) var listen: String?
    @Option(help: ArgumentHelp("Where the local API listens (loopback only).", valueName: "HOST:PORT")) var api: String?
    @Option(help: ArgumentHelp("Seconds between repair rounds.", valueName: "SECONDS")) var repairInterval: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel: String = "info"
    @Flag(help: "Do not advertise on mDNS nor dial peers found there (avahi-daemon).") var noMdns = false
    @Option(help: .hidden) var clockOffsetMs: Int64 = 0

    func run() async throws {
        let dir = common.directory
        let identity = try dir.identity()
        var config = try guarded { try AgentConfiguration.load(from: dir.path) }
        if let listen { config.listen = listen }
        if let api { config.api = api }
        if let repairInterval {
            guard repairInterval > 0 else { throw CLIError.usage("--repair-interval must be at least 1") }
            config.repairInterval = .seconds(repairInterval)
        }
        config.clockOffsetMillis = clockOffsetMs
        if noMdns { config.mdns = false }
        let lock = try await agentLock(dir)
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "hubsync")
        logger[metadataKey: "device"] = "\(identity.deviceID.short)"
        let agent = try guarded { try Agent(directory: dir.path, identity: identity, configuration: config, logger: logger, lock: lock) }
        do {
            try await agent.run()
        } catch {
            throw CLIError.failure("the agent stopped: \(error)")
        }
    }
}

/// The writer lock for an agent: refused while another agent holds it; while a command holds it
/// (an import, a restore), the agent waits for it to finish (up to a minute).
func agentLock(_ dir: DataDirectory) async throws(CLIError) -> WriterLock {
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(60)
    var told = false
    while true {
        do {
            if let lock = try WriterLock.acquire(in: dir, role: WriterLock.agentRole) { return lock }
        } catch {
            throw .failure("cannot lock \(dir.path): \(error.reason); check that it exists and that you may read it")
        }
        guard let holder = WriterLock.holder(in: dir) else { continue }
        if holder.isAgent || AgentClient.running(in: dir, pid: holder.pid) != nil {
            throw .failure("an agent already runs on \(dir.path) (pid \(holder.pid)); stop it first")
        }
        guard clock.now < deadline else {
            throw .failure("\(holder) still holds \(dir.path) after a minute; start the agent when it has finished")
        }
        if !told {
            FileHandle.standardError.write(Data("hubsync: waiting for \(holder) to finish with \(dir.path)\n".utf8))
            told = true
        }
        // Polled: the holder is another process, whose end nothing here is told of.
        try? await Deadlines.sleep(for: .milliseconds(50))
    }
}

struct PeersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers",
        abstract: "List, add or remove the devices this one trusts.",
        discussion: "Only peers added on both sides talk to each other.",
        subcommands: [PeersList.self, PeersAdd.self, PeersRemove.self],
        defaultSubcommand: PeersList.self)
}

struct PeersList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List trusted peers.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let store = try common.directory.openStore()
        let peers = try guarded { try store.peers() }
        if output.json {
            printJSON(.array(peers.map { p in
                ["device_id": .string(p.device.description), "address": p.address.map { .string($0) } ?? .null,
                 "their_sequence_held": .int(p.theirSequence), "acknowledged_sequence": .int(p.ackedSequence)]
            }))
            return
        }
        if peers.isEmpty { print("No trusted peers. Add one with: hubsync peers add DEVICE-ID --address HOST:PORT") }
        for p in peers { print("\(p.device)  \(p.address ?? "(no address)")") }
    }
}

struct PeersAdd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Trust a device (by its ID, from `hubsync id` there).")
    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The other device's ID.") var deviceID: String
    @Option(help: ArgumentHelp("Where to reach it.", valueName: "HOST:PORT")) var address: String?

    func run() throws {
        let device = try guarded { try DeviceID(parsing: deviceID) }
        if let address, !SyncNode.isDialable(address) {
            throw CLIError.usage("--address must be HOST:PORT with a port of 1–65535, e.g. 192.168.1.20:7400")
        }
        var added: Bool
        switch try common.directory.writer() {
        case .agent(let agent):
            var body: [String: Value] = ["device_id": .string(device.description)]
            if let address { body["address"] = .string(address) }
            added = try agent.call("POST", "/v1/peers", body: .object(body)).objectValue?["added"] == .bool(true)
        case .direct(let store):
            added = try guarded { try store.addPeer(device, address: address) }
        }
        if output.json {
            printJSON(["device_id": .string(device.description), "added": .bool(added)])
        } else {
            print(added ? "Trusted \(device)" : "Already trusted: \(device)" + (address.map { " (address now \($0))" } ?? ""))
        }
    }
}

struct PeersRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Stop trusting a device.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The device's ID.") var deviceID: String

    func run() async throws {
        let device = try guarded { try DeviceID(parsing: deviceID) }
        // A household member is removed from the household, on every member (protocol/SPEC.md 4.8).
        switch try common.directory.writer() {
        case .agent(let agent):
            if (try? await agent.client.request("GET", "/v1/pairing/household"))?.body.objectValue?["members"]?.arrayValue?
                .contains(.string(device.description)) == true {
                let state = try agent.call("DELETE", "/v1/pairing/household/\(pathSegment(device.description))")
                if output.json { printJSON(state) } else { print("Removed \(device) from the household") }
                return
            }
            _ = try agent.call("DELETE", "/v1/peers/\(pathSegment(device.description))")
        case .direct(let store):
            if try guarded({ try HouseholdSnapshot.read(in: common.directory) }).isMember(device) {
                let state = try await removeFromHousehold(device, in: common.directory, store: store)
                if output.json { printJSON(state) } else { print("Removed \(device) from the household") }
                return
            }
            guard try guarded({ try store.removePeer(device) }) else {
                throw CLIError.failure("\(device) is not a trusted peer; see `hubsync peers`")
            }
        }
        if output.json { printJSON(["device_id": .string(device.description), "removed": true]) } else { print("Removed \(device)") }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the agent and every peer: connected, or why not; last sync; what is left to send.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let dir = common.directory
        guard let agent = dir.runningAgent() else {
            if let holder = WriterLock.holder(in: dir), holder.isAgent {
                // An agent holds the directory, but its API cannot be found: say so, as writes do.
                throw dir.unreachable(holder, "so its status cannot be read;")
            }
            let store = try dir.openStore()
            let peers = try guarded { try store.peers() }
            let last = try guarded { try store.lastSequence() }
            let doc: Value = [
                "agent": "not running",
                "peers": .array(peers.map { p in
                    ["device_id": .string(p.device.description), "connected": false,
                     "reason": "the agent is not running: start it with `hubsync run`",
                     "pending_to_send": .int(max(0, last - p.ackedSequence))]
                }),
            ]
            if output.json { printJSON(doc) } else {
                print("Agent: not running (start it with `hubsync run --data \(dir.path)`)")
                for p in peers { print("  \(p.device): \(max(0, last - p.ackedSequence)) changes to send") }
            }
            return
        }
        let answer = try agent.call("GET", "/v1/status")
        if output.json { printJSON(answer); return }
        var bytes: [UInt8] = []
        JSON.write(answer, to: &bytes)
        let status: AgentStatus
        do { status = try AgentStatus(decoding: bytes) } catch {
            throw CLIError.failure("the agent's status could not be read (\(error)); is it the same version as this hubsync?")
        }
        print("Device \(status.deviceID)  listening on \(status.listen ?? "?"), API \(status.api ?? "?")")
        let mdns = status.mdns
        switch mdns.state {
        case "unavailable": print("mDNS unavailable: \(mdns.reason ?? "?")")
        default: print("mDNS: \(mdns.state)" + (mdns.reason.map { " (\($0))" } ?? ""))
        }
        for p in status.peers {
            let state = p.connected ? "connected" : "not connected: \(p.reason ?? "?")"
            print("  \(p.deviceID): \(state); last sync \(p.lastSync ?? "never"); \(p.pendingToSend) changes to send; "
                + "sent \(p.bytesSent) B, received \(p.bytesReceived) B")
        }
        for r in status.refused { print("  refused: \(r.deviceID) is not trusted") }
        if let b = status.backup {
            print("Backup: last \(b.last ?? "never")\(b.ageSeconds.map { " (\($0) s ago)" } ?? "") to "
                + "\(b.target ?? "-"), every \(b.intervalSeconds) s")
            if let w = b.warning { print("  warning: \(w)") }
        }
    }
}
