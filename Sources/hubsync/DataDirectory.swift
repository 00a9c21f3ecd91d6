import ArgumentParser
import Foundation
import HubSyncAgent
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore

/// Options every command takes.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: ArgumentHelp(
        "The device's data directory (default: $HUBSYNC_DATA, else ~/.local/share/hubsync).", valueName: "DIR"))
    var dataPath: String?
    @Flag(name: .shortAndLong, help: "Print no progress and no confirmations; errors and the data asked for still print.")
    var quiet = false

    func validate() throws {
        if quiet { Quiet.isOn = true }
    }

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

/// The writer lock this process holds, if any: taken by the first command step that writes or
/// opens the store for writing, released by the kernel when the process exits.
nonisolated(unsafe) private var heldLock: WriterLock?

extension DataDirectory {
    /// The identity, or a failure saying how to create one.
    func identity() throws(CLIError) -> Identity {
        var status = stat()
        if stat(path, &status) == 0, access(path, R_OK | X_OK) != 0 {
            throw .failure("permission denied on \(path): this user may not read the data directory; run HubSync "
                + "as the user who owns it (`ls -ld \(path)`), or fix its mode with `chmod 700 \(path)`")
        }
        if stat(path, &status) == 0, status.st_mode & S_IFMT != S_IFDIR {
            throw .usage("\(path) is a file, not a data directory; give a directory with --data")
        }
        guard Identity.exists(in: url) else {
            if let lost = lostIdentity(changed: false) { throw lost }
            throw .failure("no HubSync device in \(path); run `hubsync init --data \(path)` first")
        }
        return try guarded { try Identity.load(from: url) }
    }

    /// The failure for a directory that holds a device's store or household files but no
    /// `identity.key`: the key was lost, and a new one would make another device, which the
    /// store and the household do not belong to. Nil when none of those files is there.
    func lostIdentity(changed: Bool) -> CLIError? {
        let kept = [DataDirectory.storeFile, DataDirectory.householdFile, DataDirectory.statementsFile]
            .filter { FileManager.default.fileExists(atPath: file($0)) }
        guard let first = kept.first else { return nil }
        return .failure("\(DataDirectory.identityFile) is missing from \(path), which holds a device's \(first)"
            + (changed ? "; nothing was changed" : "")
            + ": restore \(DataDirectory.identityFile) from a copy of this directory; without it this device cannot be "
            + "recovered — make a new data directory (`hubsync init --data NEW-DIR`) and join the household there with a code "
            + "from a member (`hubsync pair invite` on the member, `hubsync pair join CODE --data NEW-DIR`); the records come back "
            + "from the peers")
    }

    /// Opens the device's store for a command that may write it only while no agent runs: with
    /// the writer lock free, this process takes it and opens the store for writing; while another
    /// process (the agent) holds it, the store opens read-only beside it.
    func openStore() throws(CLIError) -> Store {
        let id = try identity()
        if let missingStoreProblem { throw .failure(missingStoreProblem) }
        if heldLock != nil || (try? takeLock()) != nil {
            return try guarded { try Store(path: storePath, device: id.deviceID) }
        }
        return try guarded { try Store(path: storePath, device: id.deviceID, readOnly: true) }
    }

    /// Whether this process holds the writer lock.
    var holdsWriterLock: Bool { heldLock != nil }

    /// Takes the writer lock for the rest of this process, if it is free.
    @discardableResult
    func takeLock() throws(CLIError) -> WriterLock? {
        if let heldLock { return heldLock }
        let role = CommandLine.arguments.dropFirst().first(where: { !$0.hasPrefix("-") }) ?? "command"
        do {
            heldLock = try WriterLock.acquire(in: self, role: role)
        } catch {
            throw .failure("cannot lock \(path): \(error.reason); check that it exists and that you may read it")
        }
        return heldLock
    }

    /// Takes the writer lock for a command that must have the directory to itself (init,
    /// restore into a new directory), or says who holds it.
    func lockExclusively(for what: String) throws(CLIError) {
        guard try takeLock() == nil else { return }
        let holder = WriterLock.holder(in: self)
        throw .failure("\(holder?.description ?? "another process") holds \(path); \(what) needs the directory to itself"
            + (holder?.isAgent == true ? ": stop the agent first" : ": try again when it has finished"))
    }

    /// Where this command's writes go: the running agent when one holds the directory, else the
    /// store itself, with the writer lock held for the rest of the command. While another command
    /// holds the lock, waits for it (up to `patience`); an agent that holds it but whose API
    /// cannot be found is an error after a few seconds, not a wait.
    func writer(patience: Duration = .seconds(60), purpose: String? = nil) throws(CLIError) -> Writer {
        let clock = ContinuousClock()
        let start = clock.now
        var told = false
        _ = try identity() // no device here: say how to make one, before anything else
        while true {
            if try takeLock() != nil {
                let id = try identity()
                if let missingStoreProblem { throw .failure(missingStoreProblem) }
                return .direct(try guarded { try Store(path: storePath, device: id.deviceID) })
            }
            guard let holder = WriterLock.holder(in: self) else { continue } // let go just now: take it
            if let agent = AgentClient.running(in: self, pid: holder.pid) { return .agent(agent) }
            let waited = clock.now - start
            if holder.isAgent || holder.role == nil, waited > .seconds(10) {
                // The holder's agent.json does not name it or a loopback port it listens on: a
                // hand-edited or removed file (the token is not sent there), or not an agent at all.
                throw unreachable(holder, "so its API cannot be found; if it is an agent,")
            }
            guard waited < patience else {
                throw .failure("\(holder) holds \(path) and did not let go within \(patience.components.seconds) s; "
                    + "try again when it has finished")
            }
            if !told, !holder.isAgent, holder.role != nil {
                sayWaiting("\(purpose.map { $0 + ": " } ?? "")waiting for \(holder) to finish with \(path)"
                    + " (up to \(patience.components.seconds) s)", ["holder_pid": .int(Int64(holder.pid))])
                told = true
            }
            // The holder is another command, or an agent still starting (its API not bound yet).
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// The failure for a lock holder whose `agent.json` does not name it and a loopback port it
    /// listens on: `consequence` says what cannot be done, then how to restart it.
    func unreachable(_ holder: WriterLock.Holder, _ consequence: String) -> CLIError {
        .failure("\(holder) holds \(path), but \(DataDirectory.agentStateFile) there does not name it and a loopback "
            + "port it listens on, \(consequence) restart it (`kill \(holder.pid)`, then `hubsync run`)")
    }

    /// The running agent, when one holds the directory.
    func runningAgent() -> AgentClient? {
        guard let holder = WriterLock.holder(in: self) else { return nil }
        return AgentClient.running(in: self, pid: holder.pid)
    }

    /// The name given at `init`, if any.
    var deviceName: String? { DeviceNames.configuredName(in: self) }
}

/// Where a command's writes go.
enum Writer {
    /// This process holds the writer lock and writes the store itself.
    case direct(Store)
    /// An agent holds it: writes go through its local API.
    case agent(AgentClient)
}

/// `--quiet`: set while the arguments are parsed, read by everything that prints progress or a
/// confirmation.
enum Quiet {
    nonisolated(unsafe) static var isOn = false
}

/// A line on standard error saying what the command waits for, so the wait is not silent: with
/// `--json` a JSON event (`{"event": "waiting", "message", …}`, standard error then carries JSON
/// only), else `hubsync: MESSAGE`; nothing with `--quiet`.
func sayWaiting(_ message: String, _ fields: [String: Value] = [:]) {
    guard !Quiet.isOn else { return }
    var event = fields
    event["event"] = "waiting"
    event["message"] = .string(message)
    let line = HubSync.wantsJSON ? JSON.serialize(.object(event)) : "hubsync: " + message
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
