import Foundation
import HubSyncCore

/// A `hubsync run` process on free ports (port 0), with the addresses it reported bound in its
/// data directory's `agent.json`.
public final class SpawnedAgent: Sendable {
    /// The agent's process (or the launcher's that `exec`s it, such as `nsenter`).
    public let process: ChildProcess
    /// The data directory it runs on.
    public let data: String
    /// The sync listener's address as the agent reports it (`HOST:PORT`).
    public let listen: String
    /// The local API's address as the agent reports it (`HOST:PORT`).
    public let api: String

    /// Starts `hubsync run --data DATA --listen LISTEN --api API EXTRA`, its output appended to
    /// `log`, and waits until `agent.json` names its PID (both listeners are bound by then).
    /// `launcher` runs before the executable (e.g. `nsenter -t PID -m -n`); it must `exec` it.
    public static func start(data: String, listen: String = "127.0.0.1:0", api: String = "127.0.0.1:0",
                             extra: [String] = [], launcher: [String] = [], log: String? = nil,
                             timeout: Double = 15) async throws -> SpawnedAgent {
        let command = launcher + [hubsyncPath, "run", "--data", data, "--listen", listen, "--api", api] + extra
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "HUBSYNC_DATA")
        let process = try ChildProcess(command[0], Array(command.dropFirst()), stdout: log ?? data + "/agent.log",
                                       environment: environment)
        var state: [String: Value] = [:]
        do {
            try await waitUntil("the agent on \(data) ready", timeout: timeout, interval: 0.01) {
                guard process.isRunning else {
                    throw CommandFailed(description: "the agent on \(data) exited \(process.exitStatus ?? -1); see \(log ?? data + "/agent.log")")
                }
                guard let bytes = FileManager.default.contents(atPath: data + "/agent.json"),
                      let o = (try? JSON.parse([UInt8](bytes)))?.objectValue,
                      o["pid"] == .int(Int64(process.pid)) else { return false }
                state = o
                return true
            }
        } catch {
            await process.stop(SIGKILL)
            throw error
        }
        return SpawnedAgent(process: process, data: data, listen: state["listen"]?.stringValue ?? "",
                            api: state["api"]?.stringValue ?? "")
    }

    private init(process: ChildProcess, data: String, listen: String, api: String) {
        self.process = process
        self.data = data
        self.listen = listen
        self.api = api
    }

    /// Kills a still running agent, so none outlives its test.
    deinit { process.signal(SIGKILL) }

    /// The listener's port.
    public var listenPort: UInt16? { listen.split(separator: ":").last.flatMap { UInt16($0) } }

    /// Whether the agent still runs.
    public var isRunning: Bool { process.isRunning }

    /// Stops the agent with SIGTERM, as a service manager would, and reaps it; its exit status.
    @discardableResult
    public func stop() async -> Int32 { await process.stop(SIGTERM) }

    /// Kills the agent with SIGKILL and reaps it; its exit status.
    @discardableResult
    public func kill() async -> Int32 { await process.stop(SIGKILL) }
}
