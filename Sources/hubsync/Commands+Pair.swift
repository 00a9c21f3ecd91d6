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
            other and sync. A wrong code uses one of the invite's attempts (default 3, of which one \
            network address may use all but one: the joiner is told what is left to its address); \
            an invite expires after 5 minutes. protocol/SPEC.md chapter 4 describes the exchange.
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
    @Option(help: ArgumentHelp("How many of those tries one network address may use (default: all but one), so a "
                               + "neighbour guessing cannot use them all.", valueName: "N"))
    var attemptsPerAddress: Int?

    func run() throws {
        guard let seconds = parseDuration(ttl), seconds >= 1, seconds <= 86_400 else {
            throw CLIError.usage("--ttl \(ttl) is not a duration from 1 s to 24 h (e.g. 90s, 5m, 1h)")
        }
        guard (1...100).contains(attempts) else { throw CLIError.usage("--attempts must be 1 to 100") }
        if let attemptsPerAddress, !(1...attempts).contains(attemptsPerAddress) {
            throw CLIError.usage("--attempts-per-address must be 1 to --attempts (\(attempts))")
        }
        _ = try common.directory.identity()
        guard let agent = common.directory.runningAgent() else {
            throw CLIError.failure("no agent runs on \(common.directory.path); the agent hosts the invite, so start "
                + "it first with `hubsync run --data \(common.directory.path)`")
        }
        let opened = try agent.call("POST", "/v1/pairing/invites",
                                    body: ["ttl_seconds": .int(Int64(seconds)), "attempts": .int(Int64(attempts)),
                                           "attempts_per_address": attemptsPerAddress.map { .int(Int64($0)) } ?? .null])
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
            do {
                _ = try agent.call("DELETE", "/v1/pairing/invites/\(pathSegment(name))")
                FileHandle.standardError.write(Data("hubsync: invite \(name) withdrawn\n".utf8))
            } catch {
                // Used already (a device joined through it), or gone: the agent's sentence says which.
                FileHandle.standardError.write(Data("hubsync: invite \(name) not withdrawn: \((error as? CLIError)?.message ?? "\(error)")\n".utf8))
            }
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
            // One network address may use only its share of the attempts: said, so the count the joiner sees is no surprise.
            var perAddress = attempts
            if case .int(let n) = o["attempts_per_address"] ?? .null { perAddress = Int(n) }
            let share = perAddress < attempts ? ", at most \(perAddress) from one address" : ""
            FileHandle.standardError.write(Data(("On the new device: hubsync pair join \(code) \(how) "
                + "(valid for \(durationText(seconds)), \(plural(attempts, "attempt"))\(share)). Waiting…\n").utf8))
        }
        var lastShown: Value?
        // Follows the invite by long polls: the agent answers when something happened to it.
        var revision: Int64 = 0
        if case .int(let n) = o["revision"] ?? .null { revision = n }
        while true {
            let answer = Result { () throws(CLIError) in
                try agent.call("GET", "/v1/pairing/invites/\(pathSegment(name))?after=\(revision)&wait=30&name_wait=10",
                               notice: .seconds(45))
            }
            // Interrupted: the handler withdraws the invite (which ends this poll) and exits 130.
            while inviteInterrupted.load(ordering: .sequentiallyConsistent) { sleep(1) }
            // The agent knows the invite no more: it was withdrawn (`DELETE /v1/pairing/invites/NAME`).
            if case .failure(let e) = answer, e.code == .notFound, e.message.hasPrefix("no invite named") {
                if output.json { printJSON(["event": "withdrawn", "name": .string(name)]) }
                throw CLIError.failure("the invite \(name) was withdrawn before a device joined; its code no longer works")
            }
            let state = try answer.get().objectValue ?? [:]
            if case .int(let n) = state["revision"] ?? .null { revision = n }
            // Each failed attempt once, with the address it came from (the agent keeps the latest 32).
            let failures = state["failures"]?.arrayValue ?? []
            // The list keeps the latest 32: the ones after the last shown are new.
            let fresh = lastShown.flatMap { failures.lastIndex(of: $0) }.map { failures[($0 + 1)...] } ?? failures[...]
            for failure in fresh {
                let f = failure.objectValue ?? [:]
                let from = f["address"]?.stringValue ?? "an unknown address"
                let reason = f["reason"]?.stringValue ?? "failed"
                if output.json {
                    printJSON(["event": "attempt_failed", "address": f["address"] ?? .null, "reason": .string(reason),
                               "time": f["time"] ?? .null])
                } else {
                    FileHandle.standardError.write(Data("failed attempt from \(from): \(reason)\n".utf8))
                }
            }
            lastShown = failures.last ?? lastShown
            switch state["state"]?.stringValue {
            case "joined":
                let device = state["device_id"]?.stringValue ?? "?"
                let deviceName = state["device_name"]?.stringValue
                if output.json { printJSON(["event": "joined", "device_id": .string(device), "device_name": state["device_name"] ?? .null]) } else {
                    print("Device \(namedID(device, deviceName)) joined the household (`hubsync pair household` lists it whole)")
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
            connected to the inviter. Exit status: 0 joined; 1 refused or failed (expired or \
            used-up invite, unreachable); 2 the code did not match (the message says how many \
            attempts are left), or the code or an option cannot be read.
            """)
    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: ArgumentHelp("The code shown by `hubsync pair invite`, e.g. ABCD-1234-5678; - asks for it without "
                                 + "echo at a terminal, else reads it from standard input (a code given here shows in "
                                 + "the process list while the join runs).", valueName: "CODE|-")) var code: String
    @Option(help: ArgumentHelp("The inviting member's sync address (its `listen` in `hubsync status`); without it the "
                               + "inviter is found over mDNS by the invite's name.", valueName: "HOST:PORT"))
    var host: String?
    @Option(help: ArgumentHelp("Seconds to look for the inviter over mDNS (without --host).", valueName: "SECONDS"))
    var findTimeout: Int = 5
    @Option(help: ArgumentHelp("Seconds to wait for the connection to the inviter after joining.", valueName: "SECONDS"))
    var connectTimeout: Int = 15

    func run() async throws {
        let invite: InviteCode
        var text = code
        if code == "-" {
            guard let typed = readSecretLine(prompt: "Invite code: "),
                  typed.contains(where: { !$0.isWhitespace }) else {
                throw CLIError.usage("pair join -: no code was read; type the code `hubsync pair invite` shows, or pipe it in")
            }
            text = typed.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        do { invite = try InviteCode(parsing: text) } catch { throw CLIError.usage(error.message) }
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
        var inviterName: String?
        let connected: Bool
        switch try dir.writer() {
        case .agent(let agent):
            household = try agent.call("POST", "/v1/pairing/join", body: [
                "code": .string(invite.text), "address": .string(host), "connect_seconds": .int(Int64(connectTimeout)),
            ], notice: .seconds(Int64(connectTimeout) + 15)).objectValue ?? [:] // it waits for the connection by design
            inviter = household["inviter"]?.stringValue ?? "?"
            inviterName = household["inviter_name"]?.stringValue
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
                // A code that did not match is input (exit 2); a refused or broken exchange failed.
                throw e.code == .wrongCode ? CLIError.usage(e.message) : CLIError.failure(e.message)
            } catch let e as NetError {
                throw CLIError.failure(e.message)
            }
            _ = try guarded { try store.addPeer(outcome.result.inviterDevice, address: host) }
            recordAudit(dir, store: store, .paired, subject: ["inviter": outcome.result.inviterDevice.description, "address": host],
                        detail: "joined the household through \(outcome.result.inviterDevice.short) by invite code")
            household = Agent.householdJSON(secrets: outcome.result.secrets, state: outcome.state).objectValue ?? [:]
            inviter = outcome.result.inviterDevice.description
            connected = false
        }
        let members = household["members"]?.arrayValue?.count ?? 0
        let millis = Int(Date().timeIntervalSince(started) * 1000)
        if output.json {
            var o = household
            o["inviter"] = .string(inviter)
            o["inviter_name"] = inviterName.map { .string($0) } ?? .null
            o["connected"] = .bool(connected)
            o["elapsed_ms"] = .int(Int64(millis))
            printJSON(.object(o))
        } else if Quiet.isOn {
            return
        } else if connected {
            print("Joined the household through \(namedID(inviter, inviterName)) and connected (\(members) members, \(millis) ms)")
        } else {
            // Without an agent nothing synced yet: the inviter's name comes with the first sync.
            print("Joined the household through \(shortID(inviter)) (\(members) members); start the agent with "
                + "`hubsync run --data \(dir.path)` to sync")
        }
    }

    /// The sync address of the agent advertising the invite `name` over mDNS.
    func findInviter(_ name: String) async throws -> String {
        switch await InviteFinder.find(name: name, timeout: .seconds(findTimeout)) {
        case .found(let address):
            if !output.json, !Quiet.isOn { FileHandle.standardError.write(Data("Found invite \(name) offered at \(address)\n".utf8)) }
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
        let own = try dir.identity().deviceID
        let household = try guarded { try HouseholdSnapshot.read(in: dir) }
        if household.secretsLost { throw CLIError.failure(HouseholdSnapshot.lostSecretsAdvice(dir)) }
        guard let secrets = household.secrets, let state = household.membership, household.isFounded else {
            if output.json { printJSON(["household": .null]) } else {
                print("No household yet: `hubsync pair invite` founds one; `hubsync pair join CODE` joins one")
            }
            return
        }
        let store = try? dir.openStore()
        let devices = DeviceLabels(store: store, directory: dir, own: own, known: Array(state.members.keys) + Array(state.removed))
        let doc = Agent.householdJSON(secrets: secrets, state: state, names: devices.names)
        if output.json { printJSON(doc); return }
        print("Household \(Hex.encode(secrets.groupID.prefix(8)))…  key epoch \(state.keyEpoch)")
        for m in state.members.keys.sorted() {
            print("  member  \(devices.label(m, full: true))" + (m == state.founder ? " (founder)" : ""))
        }
        for r in state.removed.sorted() {
            let by = (state.removedBy[r] ?? []).sorted().map(\.short)
            print("  removed \(devices.label(r, full: true))" + (by.isEmpty ? "" : " (by \(by.joined(separator: ", ")))"))
        }
        if state.removed.contains(own), own == state.founder, let by = state.removedBy[own]?.sorted() {
            // The founder can always undo its removal (protocol/SPEC.md 4.7).
            print("This device, the founder, was removed: `hubsync pair remove \(by.map(\.short).joined(separator: " "))` undoes it "
                + "and takes \(by.count == 1 ? "that device" : "those devices") out of the household")
        }
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
            agent: once the agent starts); the device cannot rejoin with the same identity. The group \
            key moves to the next epoch, and the new key is granted to every remaining member (sealed \
            to each member's identity and signed).
            Devices the removed one enrolled (members whose only chain of adds runs through it) would \
            leave with it: the removal is refused, naming them (exit status 2), unless you decide \
            about each: --keep-enrolled ID… vouches for them (this device adds them again) and \
            --remove-enrolled removes every one not kept.
            The devices the removed one removed stay removed (they are named); every removal \
            moves the key epoch on. A device that was removed can still remove its remover when \
            that makes it a member again (the founder always can: `pair household` says so).
            """)
    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The device's ID.") var deviceID: String
    @Option(name: .customLong("keep-enrolled"), parsing: .upToNextOption,
            help: ArgumentHelp("Devices the removed one enrolled that stay: this device adds them again.", valueName: "ID"))
    var keepEnrolled: [String] = []
    @Flag(name: .customLong("remove-enrolled"), help: "Also remove every device the removed one enrolled that is not kept.")
    var removeEnrolled = false

    func run() async throws {
        let device = try guarded { try DeviceID(parsing: deviceID) }
        let keep = try guarded { Set(try keepEnrolled.map { try DeviceID(parsing: $0) }) }
        let state: Value
        switch try common.directory.writer() {
        case .agent(let agent):
            var query = "remove_enrolled=\(removeEnrolled)"
            if !keep.isEmpty { query += "&keep_enrolled=" + keep.map(\.description).sorted().joined(separator: ",") }
            let (status, answer): (Int, Value)
            do {
                (status, answer) = try await agent.client.request("DELETE", "/v1/pairing/household/\(pathSegment(device.description))?\(query)")
            } catch {
                throw CLIError.failure(error.message)
            }
            guard (200..<300).contains(status) else {
                let message = answer.objectValue?["error"]?.stringValue ?? "the agent answered HTTP \(status)"
                if output.json { printJSON(answer) }
                // A device that is not a member (404) is named wrongly: bad input, as a missing record is.
                throw CLIError(status == 400 || status == 404 || status == 409 ? .invalidInput : .refused, message)
            }
            state = answer
        case .direct(let store):
            do {
                state = try await removeFromHousehold(device, keep: keep, removeEnrolled: removeEnrolled,
                                                      in: common.directory, store: store)
            } catch {
                if output.json, let e = error.cause as? EnrolledDevicesError {
                    printJSON(["error": .string(e.message), "device_id": .string(device.description),
                               "enrolled": .array(e.enrolled.map { .string($0.description) })])
                }
                if error.code == .notFound { throw CLIError(.invalidInput, error.message, cause: error) }
                throw error
            }
        }
        if output.json { printJSON(state); return }
        let epoch = state.objectValue?["key_epoch"].map { JSON.serialize($0) } ?? "?"
        print("Removed \(device) from the household (key epoch \(epoch))")
        // Removing a device never re-admits the devices it removed (protocol/SPEC.md 4.7).
        let removedBy = state.objectValue?["removed_by"]?.objectValue ?? [:]
        for (victim, issuers) in removedBy.sorted(by: { $0.key < $1.key })
        where issuers.arrayValue?.contains(.string(device.description)) == true {
            print("  \(victim) stays removed (\(device.short) removed it); it can pair again with a new identity")
        }
        // Until a member backs up under the new key, a repository cannot tell the removed device's
        // snapshots (it still holds the old data key) from the household's (protocol/SPEC.md 5.9).
        print("Take a backup to every repository now (`hubsync backup now --repo …`): from then on they set aside "
            + "any snapshot the removed device writes under its old key")
    }
}

/// Removes `device` from the household of `directory` in this process, which holds the writer
/// lock (no agent runs); answers the household as the agent's API does.
func removeFromHousehold(_ device: DeviceID, keep: Set<DeviceID> = [], removeEnrolled: Bool = false,
                         in directory: DataDirectory, store: Store) async throws(CLIError) -> Value {
    do {
        let household = try Household(directory: directory, identity: try directory.identity())
        let state = try await HouseholdRecords.remove(device, keep: keep, removeEnrolled: removeEnrolled,
                                                      from: household, in: store)
        guard let secrets = household.current.secrets else { throw CLIError.failure("no household in \(directory.path)") }
        recordAudit(directory, store: store, .removed, subject: ["device": device.description],
                    detail: "removed \(device.short) from the household")
        recordAudit(directory, store: store, .keyRotated, subject: ["epoch": "\(state.keyEpoch)"],
                    detail: "granted a new group key for epoch \(state.keyEpoch)")
        return Agent.householdJSON(secrets: secrets, state: state)
    } catch {
        throw CLIError(error)
    }
}
