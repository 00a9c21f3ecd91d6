import ArgumentParser
import Foundation
import Synchronization
import HubSyncAgent
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncNet
import HubSyncStore

struct PairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pair",
        abstract: "Bring a device into the household with a short code.",
        discussion: """
            On a member: `hubsync pair invite` prints a code such as ABCD-1234-5678, offers it in \
            the agent's mDNS advert and waits. On the new device: `hubsync pair join ABCD-1234-5678` \
            finds the member on the local network (or give `--host HOST:PORT`, the member's sync \
            address). The two devices run CPace with the code, confirm it both ways, and the new \
            device receives the household's secrets and signed membership; both then trust each \
            other and sync. A wrong code uses one of the invite's attempts (default 3); an invite \
            expires after 5 minutes. protocol/SPEC.md chapter 4 describes the exchange.
            """,
        subcommands: [PairInvite.self, PairJoin.self, PairHousehold.self, PairRemove.self])
}

struct PairInvite: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invite",
        abstract: "Open an invite on this device's running agent, print its code and wait for a device to join.",
        discussion: """
            Prints the code alone on the first line of standard output (with --json: a JSON object \
            holding it), then waits. Exit status: 0 once a device joined; 1 when the invite expired \
            or ran out of attempts (each on its own message), or the agent is not running.
            """)
    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Option(help: ArgumentHelp("How long the invite stays open: seconds, or with a unit (90s, 5m, 1h).", valueName: "DURATION"))
    var ttl: String = "5m"
    @Option(help: "How many tries the code allows (a wrong code uses one).") var attempts: Int = 3

    func run() throws {
        guard let seconds = parseDuration(ttl), seconds >= 1, seconds <= 86_400 else {
            throw CLIError.usage("--ttl \(ttl) is not a duration from 1 s to 24 h (e.g. 90s, 5m, 1h)")
        }
        guard (1...100).contains(attempts) else { throw CLIError.usage("--attempts must be 1 to 100") }
        _ = try common.directory.identity()
        guard let agent = common.directory.runningAgent() else {
            throw CLIError.failure("no agent runs on \(common.directory.path); the agent hosts the invite, so start "
                + "it first with `hubsync run --data \(common.directory.path)`")
        }
        let opened = try agent.call("POST", "/v1/pairing/invites",
                                    body: ["ttl_seconds": .int(Int64(seconds)), "attempts": .int(Int64(attempts))])
        let o = opened.objectValue ?? [:]
        guard let code = o["code"]?.stringValue, let name = o["name"]?.stringValue else {
            throw CLIError.failure("the agent answered an invite without a code: \(JSON.serialize(opened))")
        }
        // Interrupted (handlers set before the code is shown): withdraw the invite, so the code stops working.
        // The handler only posts a semaphore (async-signal-safe); a thread of its own withdraws.
        // (A dispatch signal source is armed later, on libdispatch's own thread: a signal that came
        // first, to a thread that did not block it, was ignored and the invite stayed open.)
        _ = inviteSignal // initialised here, never first in a signal handler
        Thread { [agent] in
            while sem_wait(inviteSignal) != 0 {}
            inviteInterrupted.store(true, ordering: .sequentiallyConsistent)
            _ = try? agent.call("DELETE", "/v1/pairing/invites/\(pathSegment(name))")
            FileHandle.standardError.write(Data("hubsync: invite \(name) withdrawn\n".utf8))
            // _exit: nothing buffered is left to flush, and no exit handler can hold the process up.
            _exit(130)
        }.start()
        for number in [SIGINT, SIGTERM] { signal(number) { _ in sem_post(inviteSignal) } }
        // Written unbuffered: whoever reads the code must see it before this command ends.
        var first = o
        first["event"] = "invite"
        FileHandle.standardOutput.write(Data(((output.json ? JSON.serialize(.object(first)) : code) + "\n").utf8))
        if !output.json {
            let status = (try? agent.call("GET", "/v1/status"))?.objectValue
            let listen = status?["listen"]?.stringValue ?? "HOST:PORT"
            let host = listen.hasPrefix("0.0.0.0:") ? "THIS-DEVICE-ADDRESS:" + listen.dropFirst(8) : listen
            // The new device finds this one over mDNS only while the advert runs.
            let advertised = status?["mdns"]?.objectValue?["state"]?.stringValue == "running"
            let how = advertised ? "(found over mDNS; or add --host \(host))" : "--host \(host) (mDNS is off here)"
            FileHandle.standardError.write(Data(("On the new device: hubsync pair join \(code) \(how) "
                + "(valid \(ttl), \(attempts) attempts). Waiting…\n").utf8))
        }
        var lastFailure: String?
        // Follows the invite by long polls: the agent answers when something happened to it.
        var revision: Int64 = 0
        if case .int(let n) = o["revision"] ?? .null { revision = n }
        while true {
            let answer = Result { () throws(CLIError) in
                try agent.call("GET", "/v1/pairing/invites/\(pathSegment(name))?after=\(revision)&wait=30")
            }
            // Interrupted: the handler withdraws the invite (which ends this poll) and exits 130.
            while inviteInterrupted.load(ordering: .sequentiallyConsistent) { sleep(1) }
            let state = try answer.get().objectValue ?? [:]
            if case .int(let n) = state["revision"] ?? .null { revision = n }
            if let failure = state["last_failure"]?.stringValue, failure != lastFailure {
                lastFailure = failure
                if !output.json { FileHandle.standardError.write(Data("\(failure)\n".utf8)) }
            }
            switch state["state"]?.stringValue {
            case "joined":
                let device = state["device_id"]?.stringValue ?? "?"
                if output.json { printJSON(["event": "joined", "device_id": .string(device)]) } else {
                    print("Device \(device) joined the household")
                }
                return
            case "expired":
                if output.json { printJSON(["event": "expired", "name": .string(name)]) }
                throw CLIError.failure("the invite \(name) expired before a device joined; run `hubsync pair invite` again")
            case "exhausted":
                if output.json { printJSON(["event": "exhausted", "name": .string(name)]) }
                throw CLIError.failure("the invite \(name) ran out of attempts (\(attempts) used); nobody joined; "
                    + "run `hubsync pair invite` again and check the code as it is typed")
            default:
                continue
            }
        }
    }
}

/// Set when `pair invite` is interrupted, so its main loop leaves the exit to the signal handler.
let inviteInterrupted = Atomic<Bool>(false)

/// Posted by `pair invite`'s SIGINT and SIGTERM handler. On the heap behind a constant pointer,
/// so the handler and the waiting thread share it without a Swift access to a variable.
nonisolated(unsafe) let inviteSignal: UnsafeMutablePointer<sem_t> = {
    let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    sem_init(semaphore, 0, 0)
    return semaphore
}()

struct PairJoin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "join",
        abstract: "Join a household with the code a member shows.",
        discussion: """
            Finds the inviting member's agent over mDNS by the code's name (its advert offers the \
            open invite; or use --host), runs the pairing exchange with it, saves the \
            household, trusts the inviter and, when this device's agent runs, waits until it is \
            connected to the inviter. Exit status: 0 joined; 1 refused or failed (wrong code, \
            expired or used-up invite, unreachable); 2 the code or an option cannot be read.
            """)
    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The code shown by `hubsync pair invite`, e.g. ABCD-1234-5678.") var code: String
    @Option(help: ArgumentHelp("The inviting member's sync address (its `listen` in `hubsync status`); without it the "
                               + "inviter is found over mDNS by the invite's name.", valueName: "HOST:PORT"))
    var host: String?
    @Option(help: ArgumentHelp("Seconds to look for the inviter over mDNS (without --host).", valueName: "SECONDS"))
    var findTimeout: Int = 5
    @Option(help: ArgumentHelp("Seconds to wait for the connection to the inviter after joining.", valueName: "SECONDS"))
    var connectTimeout: Int = 15

    func run() async throws {
        let invite: InviteCode
        do { invite = try InviteCode(parsing: code) } catch { throw CLIError.usage(error.message) }
        if let host, !SyncNode.isDialable(host) {
            throw CLIError.usage("--host must be HOST:PORT with a port of 1–65535, e.g. 192.168.1.20:7400")
        }
        guard (1...120).contains(findTimeout) else { throw CLIError.usage("--find-timeout must be 1 to 120 seconds") }
        guard (0...120).contains(connectTimeout) else { throw CLIError.usage("--connect-timeout must be 0 to 120 seconds") }
        let dir = common.directory
        let identity = try dir.identity()
        try guarded { try HouseholdSnapshot.read(in: dir).checkCanJoin() }
        let started = Date()
        let host: String
        if let given = self.host { host = given } else { host = try await findInviter(invite.name) }
        // The household files have one writer: the agent when it runs, else this command.
        let household: [String: Value]
        let inviter: String
        let connected: Bool
        switch try dir.writer() {
        case .agent(let agent):
            household = try agent.call("POST", "/v1/pairing/join", body: [
                "code": .string(invite.text), "address": .string(host), "connect_seconds": .int(Int64(connectTimeout)),
            ]).objectValue ?? [:]
            inviter = household["inviter"]?.stringValue ?? "?"
            guard household["connected"] == .bool(true) else {
                throw CLIError.failure("joined the household, but this agent did not connect to \(inviter) at "
                    + "\(host) within \(connectTimeout) s; see `hubsync status`")
            }
            connected = true
        case .direct(let store):
            let outcome: HouseholdJoin.Outcome
            do {
                // This command holds the writer lock: it is the household's one writer.
                let household = try Household(directory: dir, identity: identity)
                outcome = try await HouseholdJoin.join(household: household, code: invite, address: host, listenPort: 0)
            } catch let e as HouseholdError {
                throw CLIError.failure(e.message)
            } catch let e as PairingError {
                throw CLIError.failure(e.message)
            } catch let e as NetError {
                throw CLIError.failure(e.message)
            }
            _ = try guarded { try store.addPeer(outcome.result.inviterDevice, address: host) }
            household = Agent.householdJSON(secrets: outcome.result.secrets, state: outcome.state).objectValue ?? [:]
            inviter = outcome.result.inviterDevice.description
            connected = false
        }
        let members = household["members"]?.arrayValue?.count ?? 0
        let millis = Int(Date().timeIntervalSince(started) * 1000)
        if output.json {
            var o = household
            o["inviter"] = .string(inviter)
            o["connected"] = .bool(connected)
            o["elapsed_ms"] = .int(Int64(millis))
            printJSON(.object(o))
        } else if connected {
            print("Joined the household through \(inviter) and connected (\(members) members, \(millis) ms)")
        } else {
            print("Joined the household through \(inviter) (\(members) members); start the agent with "
                + "`hubsync run --data \(dir.path)` to sync")
        }
    }

    /// The sync address of the agent advertising the invite `name` over mDNS.
    func findInviter(_ name: String) async throws -> String {
        switch await InviteFinder.find(name: name, timeout: .seconds(findTimeout)) {
        case .found(let address):
            if !output.json { FileHandle.standardError.write(Data("Found invite \(name) offered at \(address)\n".utf8)) }
            return address
        case .notFound:
            throw CLIError.failure("no device on this network is offering invite \(name) (looked for \(findTimeout) s); "
                + "check the code, or give --host HOST:PORT (the inviter's `listen` in `hubsync status`)")
        case .unavailable(let reason):
            throw CLIError.failure("cannot look for invite \(name) on this network: mDNS unavailable: \(reason); "
                + "give the inviter's address with --host HOST:PORT (its `listen` in `hubsync status`)")
        }
    }

}

struct PairHousehold: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "household",
        abstract: "Show this device's household: group, key epoch, members and removed devices.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let dir = common.directory
        _ = try dir.identity()
        let household = try guarded { try HouseholdSnapshot.read(in: dir) }
        guard let secrets = household.secrets, let state = household.membership, household.isFounded else {
            if output.json { printJSON(["household": .null]) } else {
                print("No household yet: `hubsync pair invite` founds one; `hubsync pair join CODE` joins one")
            }
            return
        }
        let doc = Agent.householdJSON(secrets: secrets, state: state)
        if output.json { printJSON(doc); return }
        print("Household \(Hex.encode(secrets.groupID.prefix(8)))…  key epoch \(state.keyEpoch)")
        for m in state.members.keys.sorted() { print("  member  \(m)" + (m == state.founder ? " (founder)" : "")) }
        for r in state.removed.sorted() { print("  removed \(r)") }
    }
}

/// Reads `90`, `90s`, `5m`, `1h` as seconds.
func parseDuration(_ text: String) -> Int? {
    let t = text.trimmingCharacters(in: .whitespaces).lowercased()
    let units: [(String, Int)] = [("h", 3600), ("m", 60), ("s", 1)]
    for (suffix, factor) in units where t.hasSuffix(suffix) {
        return Int(t.dropLast()).map { $0 * factor }
    }
    return Int(t)
}

struct PairRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove a device from the household, on every member.",
        discussion: """
            Signs a removal statement, through this device's agent when it runs. It syncs to every \
            member, which stops trusting the device and closes its sessions at once (without an \
            agent: once the agent starts); the device cannot rejoin with the same identity. Members \
            that the removed device had added are added again by this one. The group key moves to \
            the next epoch, and the new key is granted to every remaining member (sealed to each \
            member's identity and signed).
            """)
    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The device's ID.") var deviceID: String

    func run() async throws {
        let device = try guarded { try DeviceID(parsing: deviceID) }
        let state: Value
        switch try common.directory.writer() {
        case .agent(let agent):
            state = try agent.call("DELETE", "/v1/pairing/household/\(pathSegment(device.description))")
        case .direct(let store):
            state = try await removeFromHousehold(device, in: common.directory, store: store)
        }
        if output.json { printJSON(state); return }
        let epoch = state.objectValue?["key_epoch"].map { JSON.serialize($0) } ?? "?"
        print("Removed \(device) from the household (key epoch \(epoch))")
    }
}

/// Removes `device` from the household of `directory` in this process, which holds the writer
/// lock (no agent runs); answers the household as the agent's API does.
func removeFromHousehold(_ device: DeviceID, in directory: DataDirectory, store: Store) async throws(CLIError) -> Value {
    do {
        let household = try Household(directory: directory, identity: try directory.identity())
        let state = try await HouseholdRecords.remove(device, from: household, in: store)
        guard let secrets = household.current.secrets else { throw CLIError.failure("no household in \(directory.path)") }
        return Agent.householdJSON(secrets: secrets, state: state)
    } catch {
        throw CLIError(error)
    }
}
