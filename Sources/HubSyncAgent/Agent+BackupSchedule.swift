import HubSyncBase
import Foundation
import HubSyncBackup
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncNet
import HubSyncStore
import ServiceLifecycle

/// What the scheduled backups did last, for status (also kept in `DATA/backup-state.json`).
public struct BackupRunState: Sendable {
    /// When the last successful backup finished (Unix ms), its snapshot and target.
    var last: UInt64?
    var snapshot: String?
    var target: String?
    /// Why the last attempt failed, if it did.
    var error: String?
    var errorTarget: String?
    public init() {}
}

/// The agent takes `backup now` itself on the configured interval (`"backup"` in config.json),
/// applies the retention rules (forget, without prune), and reports a backup older than the
/// recovery point as a warning in status.
extension Agent {
    static let backupStateFile = DataDirectory.backupStateFile

    /// Runs the schedule until shutdown; idle when no interval or target is configured.
    struct BackupService: Service {
        let agent: Agent

        func run() async throws {
            await agent.loadBackupState()
            guard let schedule = agent.configuration.backup, schedule.intervalSeconds > 0, !schedule.targets.isEmpty else {
                try? await gracefulShutdown()
                return
            }
            do {
                try await cancelWhenGracefulShutdown {
                    while true {
                        let now = UInt64(Date().timeIntervalSince1970 * 1000)
                        let due = (agent.backupState.withLock { $0.last } ?? 0) + UInt64(schedule.intervalSeconds) * 1000
                        if due > now { try await Deadlines.sleep(for: .milliseconds(Int64(due - now))) }
                        await agent.runScheduledBackups(schedule)
                        // After a failure, try again after the interval too (not in a tight loop).
                        if agent.backupState.withLock({ $0.error != nil }) {
                            try await Deadlines.sleep(for: .seconds(schedule.intervalSeconds))
                        }
                    }
                }
            } catch is CancellationError {
                return
            }
        }
    }

    /// One backup to each target, in order; the state records the last success and any failure.
    func runScheduledBackups(_ schedule: BackupSchedule) async {
        var failure: (String, String)?
        for text in schedule.targets {
            do {
                let snapshot = try await BlockingIO.run { try self.backupOnce(to: text, schedule) }
                backupState.withLock {
                    $0.last = snapshot.time
                    $0.snapshot = snapshot.id.hex
                    $0.target = text
                }
                logger.info("scheduled backup done", metadata: ["target": "\(text)", "snapshot": "\(snapshot.id.short)"])
            } catch {
                let message = (error as? BackupError)?.message ?? "\(error)"
                failure = (text, message)
                logger.warning("scheduled backup failed", metadata: ["target": "\(text)", "error": "\(message)"])
            }
        }
        backupState.withLock {
            $0.error = failure?.1
            $0.errorTarget = failure?.0
        }
        await saveBackupState()
    }

    /// `hubsync backup now` for one target, in this process; then the retention rules. Blocking
    /// (files, sockets, SQLite): it runs on the blocking-I/O pool.
    func backupOnce(to text: String, _ schedule: BackupSchedule) throws -> Snapshot {
        let household = try self.household.current.secretsForBackup(in: DataDirectory(path: directory))
        let target = try makeTarget(text, peer: { id throws(BackupError) in try self.peerTarget(id) })
        let repo = try Repository.exists(at: target)
            ? Repository.open(at: target, household: household, recoveryKey: nil)
            : Repository.create(at: target, household: household)
        let host = ProcessInfo.processInfo.hostName
        let holder = "the agent on \(host) (pid \(getpid()))"
        let result = try repo.backup(store: store, device: identity.deviceID.description, hostname: host,
                                     household: household, holder: holder, progress: { _, _, _ in })
        if !schedule.retention.isEmpty { _ = try repo.forget(policy: schedule.retention, holder: holder) }
        return result.snapshot
    }

    /// A peer target for `DEVICE-ID[@HOST:PORT]`, the address from the peers table when not given.
    func peerTarget(_ text: String) throws(BackupError) -> any BackupTarget {
        let parts = text.split(separator: "@", maxSplits: 1).map(String.init)
        guard let device = try? DeviceID(parsing: parts[0]) else {
            throw BackupError(.invalidInput, "backup target peer:\(text) does not name a device ID")
        }
        let address = parts.count > 1 ? parts[1] : (try? store.peer(device))??.address
        guard let address, let (host, port) = SyncNode.split(address) else {
            throw BackupError(.invalidInput, "no address is known for the backup peer \(device.short); add it with "
                + "`hubsync peers add \(device) --address HOST:PORT`")
        }
        return PeerTarget(device: device, host: host, port: port, identity: identity.signingKey)
    }

    /// Reads what the last scheduled backup did, as saved at the end of the last run.
    func loadBackupState() async {
        let path = directory + "/" + Self.backupStateFile
        guard let data = (try? await BlockingIO.run { FileManager.default.contents(atPath: path) }) ?? nil,
              let o = (try? JSON.parse([UInt8](data)))?.objectValue, case .int(let last) = o["last"] ?? .null else { return }
        backupState.withLock {
            $0.last = UInt64(last)
            $0.snapshot = o["snapshot"]?.stringValue
            $0.target = o["target"]?.stringValue
        }
    }

    /// Saves what the scheduled backups did last (`DATA/backup-state.json`).
    func saveBackupState() async {
        let s = backupState.withLock { $0 }
        guard let last = s.last else { return }
        let v: Value = ["last": .int(Int64(last)), "snapshot": s.snapshot.map { .string($0) } ?? .null,
                        "target": s.target.map { .string($0) } ?? .null]
        let directory = writerLock.directory
        do {
            try await BlockingIO.run {
                try directory.writeAtomically(Array((JSON.serialize(v) + "\n").utf8), to: Self.backupStateFile, mode: 0o644)
            }
        } catch {
            logger.warning("cannot save the backup state; the next start may back up early", metadata: ["error": "\(error)"])
        }
    }

    /// The `"backup"` part of status: the last backup, its age, and a warning when it is older
    /// than the recovery point (or the last attempt failed); null when no schedule is configured.
    func backupStatus() -> AgentStatus.Backup? {
        guard let schedule = configuration.backup, !schedule.targets.isEmpty else { return nil }
        let s = backupState.withLock { $0 }
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        let age = s.last.map { now > $0 ? Int64((now - $0) / 1000) : 0 }
        var warning: String?
        let point = schedule.recoveryPointSeconds
        if point > 0, let age, age > point {
            warning = "the last backup is \(age) s old, older than the recovery point of \(point) s"
        } else if point > 0, s.last == nil, Date().timeIntervalSince(started) > Double(point) {
            warning = "no backup has been taken yet and the recovery point is \(point) s"
        }
        if let e = s.error {
            warning = (warning.map { $0 + "; " } ?? "") + "the last backup to \(s.errorTarget ?? "?") failed: \(e)"
        }
        return AgentStatus.Backup(targets: schedule.targets, intervalSeconds: schedule.intervalSeconds,
                                  recoveryPointSeconds: point, last: s.last.map { isoTime(Timestamp(millis: $0, counter: 0)) },
                                  ageSeconds: age, snapshot: s.snapshot, target: s.target, warning: warning)
    }
}
