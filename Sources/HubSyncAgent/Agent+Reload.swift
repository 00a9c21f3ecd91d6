import Foundation
import HubSyncBase
import HubSyncCore
import ServiceLifecycle
import UnixSignals

/// SIGHUP reloads `config.json` with the same validation as at start: a file that does not pass
/// keeps the settings in use, and the log says why. The repair interval and the backup schedule
/// apply at once; the addresses, mDNS, the clock bound and what this device keeps for others
/// apply at the next start (the log says so when the file changed them).
extension Agent {
    struct ReloadService: Service {
        let agent: Agent
        let signals: UnixSignalsSequence

        func run() async {
            await cancelWhenGracefulShutdown {
                for await _ in signals { agent.reloadConfiguration() }
            }
        }
    }

    /// Reads config.json again and applies what can change while running; answers the settings
    /// applied, those that wait for a restart, and those `hubsync run`'s flags override (the
    /// file's value is not used while they are given), or nil when the file did not pass.
    @discardableResult
    func reloadConfiguration() -> (applied: [String], restartOnly: [String], overridden: [String])? {
        var fresh: AgentConfiguration
        do {
            fresh = try AgentConfiguration.load(from: directory)
        } catch {
            logger.error("config.json not reloaded; the settings in use stay", metadata: ["reason": "\(error.message)"])
            return nil
        }
        let file = fresh
        reloadFlags?(&fresh)
        var overridden: [String] = []
        if file.listen != fresh.listen { overridden.append("listen") }
        if file.api != fresh.api { overridden.append("api") }
        if file.mdns != fresh.mdns { overridden.append("mdns") }
        if file.repairInterval != fresh.repairInterval { overridden.append("repair_interval_seconds") }
        if file.maxClockDriftMillis != fresh.maxClockDriftMillis { overridden.append("max_clock_drift_seconds") }
        let (restartOnly, applied) = settings.withLock { current -> ([String], [String]) in
            var restartOnly: [String] = [], applied: [String] = []
            if fresh.listen != current.listen { restartOnly.append("listen") }
            if fresh.api != current.api { restartOnly.append("api") }
            if fresh.mdns != current.mdns { restartOnly.append("mdns") }
            if fresh.maxClockDriftMillis != current.maxClockDriftMillis { restartOnly.append("max_clock_drift_seconds") }
            if fresh.peerBackups != current.peerBackups { restartOnly.append("peer_backups") }
            if fresh.repairInterval != current.repairInterval { applied.append("repair_interval_seconds") }
            if fresh.backup != current.backup { applied.append("backup") }
            current.repairInterval = fresh.repairInterval
            current.backup = fresh.backup
            return (restartOnly, applied)
        }
        configurationChanges.signal()
        logger.info("config.json reloaded", metadata: ["applied": "\(applied.isEmpty ? "nothing changed" : applied.joined(separator: ", "))"])
        if !restartOnly.isEmpty {
            logger.warning("settings that take effect when the agent restarts differ from those in use",
                           metadata: ["settings": "\(restartOnly.joined(separator: ", "))"])
        }
        return (applied, restartOnly, overridden)
    }
}
