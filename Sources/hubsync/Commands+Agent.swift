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
            SIGTERM or SIGINT stops it cleanly; SIGHUP reads config.json again (a file that does not pass keeps \
            the settings in use, and the log says why). Unless --no-mdns, it advertises _hubsync._tcp \
            through the system's avahi-daemon and dials trusted peers it finds there; without the \
            daemon it keeps using static and last-known addresses and status says why. Once a 10 s stretch \
            passes with no store commit, no API answer and almost no CPU used (10 to 20 s after its last work) it gives back the memory its work left mapped: the \
            program code it no longer runs and freed heap (the log says so at --log-level debug).
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
        if let repairInterval, repairInterval <= 0 { throw CLIError.usage("--repair-interval must be at least 1") }
        // The flags override config.json, at start and again whenever SIGHUP reloads the file.
        let flags: @Sendable (inout AgentConfiguration) -> Void = { [listen, api, repairInterval, noMdns, clockOffsetMs] c in
            if let listen { c.listen = listen }
            if let api { c.api = api }
            if let repairInterval { c.repairInterval = .seconds(repairInterval) }
            if noMdns { c.mdns = false }
            c.clockOffsetMillis = clockOffsetMs
        }
        flags(&config)
        for (option, key, address) in [("--listen", "listen", config.listen), ("--api", "api", config.api)] {
            if let problem = AgentConfiguration.addressProblem(key, address, source: "\(option) (or \"\(key)\" in \(dir.configPath))") {
                throw CLIError.usage(problem)
            }
        }
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw CLIError.usage("--log-level must be one of trace, debug, info, notice, warning, error; got \"\(logLevel)\"")
        }
        let lock = try await agentLock(dir)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "hubsync")
        logger[metadataKey: "device"] = "\(identity.deviceID.short)"
        if let name = dir.deviceName { logger[metadataKey: "device.name"] = "\(name)" }
        if let problem = dir.missingStoreProblem { throw CLIError.failure(problem) }
        let agent = try guarded { try Agent(directory: dir.path, identity: identity, configuration: config, logger: logger, lock: lock,
                                             reloadOnHangup: flags) }
        do {
            try await agent.run()
        } catch {
            var failure = CLIError(error)
            failure.message = "the agent stopped: " + failure.message
            throw failure
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
        let dir = common.directory
        let store = try dir.openStore()
        let peers = try guarded { try store.peers() }
        // The household's other members are trusted too, listed or not (a repaired store may have
        // lost their rows): shown, so `peers` and `peers add` agree.
        let household = try? HouseholdSnapshot.read(in: dir)
        let own = try? dir.identity().deviceID
        let listed = Set(peers.map(\.device))
        let members = (household?.membership?.members.keys).map { Array($0) } ?? []
        let unlisted = members.filter { $0 != own && !listed.contains($0) }.sorted { $0.description < $1.description }
        let devices = DeviceLabels(store: store, directory: dir, own: nil, known: peers.map(\.device) + unlisted)
        if output.json {
            printJSON(.array(peers.map { p in
                ["device_id": .string(p.device.description), "device_name": devices.json(p.device),
                 "address": p.address.map { .string($0) } ?? .null, "household_member": .bool(household?.isMember(p.device) ?? false),
                 "their_sequence_held": .int(p.theirSequence), "acknowledged_sequence": .int(p.ackedSequence)]
            } + unlisted.map { m in
                ["device_id": .string(m.description), "device_name": devices.json(m), "address": .null,
                 "household_member": true, "their_sequence_held": 0, "acknowledged_sequence": 0]
            }))
            return
        }
        if peers.isEmpty && unlisted.isEmpty { print("No trusted peers. Add one with: hubsync peers add DEVICE-ID --address HOST:PORT") }
        // One form for a device without an address, trusted peer or household member alike.
        func noAddress(_ device: DeviceID, member: Bool) -> String {
            "(\(member ? "household member; " : "")no address known: found over mDNS, "
                + "or give one with `hubsync peers add \(device) --address HOST:PORT`)"
        }
        for p in peers {
            print("\(devices.label(p.device, full: true))  \(p.address ?? noAddress(p.device, member: household?.isMember(p.device) ?? false))")
        }
        for m in unlisted { print("\(devices.label(m, full: true))  \(noAddress(m, member: true))") }
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
            if try guarded({ try HouseholdSnapshot.read(in: common.directory) }).membership?.removed.contains(device) == true {
                throw CLIError.usage(PeerTrust.removedMessage(device))
            }
            added = try guarded { try store.addPeer(device, address: address) }
        }
        if output.json {
            printJSON(["device_id": .string(device.description), "added": .bool(added)])
        } else if !Quiet.isOn {
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
            try removeTrust(device, through: agent)
        case .direct(let store):
            if try guarded({ try HouseholdSnapshot.read(in: common.directory) }).isMember(device) {
                let state = try await removeFromHousehold(device, in: common.directory, store: store)
                if output.json { printJSON(state) } else { print("Removed \(device) from the household") }
                return
            }
            guard try guarded({ try store.removePeer(device) }) else {
                throw CLIError.usage("\(device) is not a trusted peer; see `hubsync peers`")
            }
        }
        if output.json { printJSON(["device_id": .string(device.description), "removed": true]) } else if !Quiet.isOn { print("Removed \(device)") }
    }
}

/// `DELETE /v1/peers/ID`; naming a device that is not a trusted peer is bad input (exit 2).
func removeTrust(_ device: DeviceID, through agent: AgentClient) throws(CLIError) {
    do {
        _ = try agent.call("DELETE", "/v1/peers/\(pathSegment(device.description))")
    } catch {
        guard error.code == .notFound else { throw error }
        throw CLIError(.invalidInput, error.message + "; see `hubsync peers`", cause: error)
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
            try printWithoutAgent(state: "not running", reason: "the agent is not running: start it with `hubsync run`",
                                  line: "Agent: not running (start it with `hubsync run --data \(dir.path)`)")
            return
        }
        var answer = try statusAnswer(agent)
        // A damaged store cannot give this device's name; its device.json still does.
        if case .object(var o) = answer, (o["device_name"] ?? .null) == .null,
           let name = dir.deviceName.flatMap(DeviceNames.displayable) {
            o["device_name"] = .string(name)
            answer = .object(o)
        }
        // A store the agent cannot read is a failure (exit 1), after the status that names it.
        let storeProblem = answer.objectValue?["store"]?.objectValue?["problem"]?.stringValue
        if output.json {
            printJSON(answer)
            if let storeProblem { throw CLIError(.damaged, storeProblem) }
            return
        }
        var bytes: [UInt8] = []
        JSON.write(answer, to: &bytes)
        let status: AgentStatus
        do { status = try AgentStatus(decoding: bytes) } catch {
            throw CLIError.failure("the agent's status could not be read (\(error)); is it the same version as this hubsync?")
        }
        var devices = DeviceLabels(store: nil, directory: dir, own: try? DeviceID(parsing: status.deviceID),
                                   known: (status.peers.map(\.deviceID) + status.refused.map(\.deviceID)).compactMap { try? DeviceID(parsing: $0) })
        for p in status.peers {
            // The agent sends names cleaned; cleaned again here, as text from another process.
            if let id = try? DeviceID(parsing: p.deviceID), let name = p.deviceName.flatMap(DeviceNames.displayable) { devices.names[id] = name }
        }
        print("Device \(devices.label(status.deviceID, full: true))  listening on \(status.listen ?? "?"), API \(status.api ?? "?")")
        if let problem = status.store.problem { print("Store: cannot be read: \(problem)") }
        let mdns = status.mdns
        switch mdns.state {
        case "unavailable": print("mDNS unavailable: \(mdns.reason ?? "?")")
        default: print("mDNS: \(mdns.state)" + (mdns.reason.map { " — \($0)" } ?? ""))
        }
        for p in status.peers {
            let state = p.connected ? "connected" : "not connected: \(p.reason ?? "?")"
            print("  \(devices.label(p.deviceID)): \(state); last sync \(p.lastSync ?? "never"); "
                + "\(plural(Int(p.pendingToSend), "change")) to send; sent \(byteText(Int(p.bytesSent))), received \(byteText(Int(p.bytesReceived)))")
            if let r = p.lastRepairRound {
                print("    last repair round \(p.lastRepair ?? "?"): \(plural(r.recordsSent, "record")) sent, \(plural(r.recordsReceived, "record")) "
                    + "received, \(plural(r.roundTrips, "round trip")), \(byteText(r.bytesSent)) sent, \(byteText(r.bytesReceived)) received, \(r.milliseconds) ms")
            }
            // A few by name; the rest counted (status --json lists every one).
            for u in p.undelivered.prefix(5) { print("    \(printable(u.record)): \(u.reason)") }
            if p.undelivered.count > 5 {
                print("    and \(plural(p.undelivered.count - 5, "more record")) not delivered to it (`hubsync status --json` lists them)")
            }
        }
        for r in status.refused { print("  refused: \(devices.label(r.deviceID)) is not trusted") }
        if let b = status.backup {
            let last = b.last.map { "last \($0)" + (b.ageSeconds.map { " (\(durationText(Int($0))) ago)" } ?? "") + (b.target.map { " to \($0)" } ?? "") }
                ?? "none yet"
            let schedule = b.intervalSeconds > 0 ? "every \(durationText(Int(b.intervalSeconds)))"
                : "no schedule (interval_seconds 0: `hubsync backup now` or the dashboard's Backup now)"
            print("Backup: \(last); \(schedule); targets \(b.targets.joined(separator: ", "))")
            if let w = b.warning { print("  warning: \(w)") }
            if let d = b.lastDrill {
                print("  last drill \(d.at) on \(d.target): snapshot \(d.snapshot.prefix(8)) restored in "
                    + "\(String(format: "%.1f", d.recoveryTimeSeconds)) s (recovery time), \(durationText(Int(d.recoveryPointSeconds))) old "
                    + "(recovery point)" + (d.ok ? "; sound" : "; problems: " + d.problems.joined(separator: "; ")))
            }
        }
        if let storeProblem { throw CLIError(.damaged, storeProblem) }
    }

    /// The agent's status; from a hung agent, what the store says without it, then the failure.
    func statusAnswer(_ agent: AgentClient) throws(CLIError) -> Value {
        do {
            return try agent.call("GET", "/v1/status", timeout: .seconds(10))
        } catch {
            if error.code == .timeout {
                try printWithoutAgent(state: "not answering", reason: "the agent (pid \(agent.pid)) does not answer",
                                      line: "Agent: pid \(agent.pid) does not answer (hung, stopped or overloaded); what the store says:")
            }
            throw error
        }
    }

    /// The status the store alone can tell (each peer's changes left to send), for when no agent
    /// answers: `state` and `reason` go in the JSON, `line` heads the text.
    func printWithoutAgent(state: String, reason: String, line: String) throws(CLIError) {
        let dir = common.directory
        let store = try dir.openStore()
        let peers = try guarded { try store.peers() }
        let last = try guarded { try store.lastSequence() }
        let own = try dir.identity().deviceID
        let devices = DeviceLabels(store: store, directory: dir, own: own, known: peers.map(\.device))
        let doc: Value = [
            "agent": .string(state),
            "device_id": .string(own.description), "device_name": devices.json(own),
            "peers": .array(peers.map { p in
                ["device_id": .string(p.device.description), "device_name": devices.json(p.device), "connected": false,
                 "reason": .string(reason), "pending_to_send": .int(max(0, last - p.ackedSequence))]
            }),
        ]
        if output.json { printJSON(doc) } else {
            print("Device \(devices.label(own, full: true))")
            print(line)
            for p in peers {
                print("  \(devices.label(p.device)): \(plural(Int(max(0, last - p.ackedSequence)), "change")) to send")
            }
        }
    }
}
