import ArgumentParser
import Foundation
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
        guard Identity.exists(in: url) else {
            throw .failure("no HubSync device in \(path); run `hubsync init --data \(path)` first")
        }
        return try guarded { try Identity.load(from: url) }
    }

    /// Opens the device's store for a command that may write it only while no agent runs: with
    /// the writer lock free, this process takes it and opens the store for writing; while another
    /// process (the agent) holds it, the store opens read-only beside it.
    func openStore() throws(CLIError) -> Store {
        let id = try identity()
        if heldLock != nil || (try? takeLock()) != nil {
            return try guarded { try Store(path: storePath, device: id.deviceID) }
        }
        return try guarded { try Store(path: storePath, device: id.deviceID, readOnly: true) }
    }

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
    func writer(patience: Duration = .seconds(60)) throws(CLIError) -> Writer {
        let clock = ContinuousClock()
        let start = clock.now
        var told = false
        while true {
            if try takeLock() != nil {
                let id = try identity()
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
                FileHandle.standardError.write(Data("hubsync: waiting for \(holder) to finish with \(path)\n".utf8))
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
    var deviceName: String? {
        guard let bytes = contents(of: DataDirectory.deviceFile), let v = try? JSON.parse(bytes) else { return nil }
        return v.objectValue?["name"]?.stringValue
    }
}

/// Where a command's writes go.
enum Writer {
    /// This process holds the writer lock and writes the store itself.
    case direct(Store)
    /// An agent holds it: writes go through its local API.
    case agent(AgentClient)
}
