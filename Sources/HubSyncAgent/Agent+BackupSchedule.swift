import HubSyncBase
import Foundation
import HubSyncBackup
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncNet
import HubSyncStore
import ServiceLifecycle
import Synchronization

/// What the scheduled backups did last, for status (also kept in `DATA/backup-state.json`).
public struct BackupRunState: Sendable {
    /// When the last successful backup finished (Unix ms), its snapshot and target.
    var last: UInt64?
    var snapshot: String?
    var target: String?
    /// Why the last attempt failed, if it did.
    var error: String?
    var errorTarget: String?
    /// Snapshot files of a target this device could not read after its last backup there.
    var unreadable: [String: [String]] = [:]
    /// Per target, what the last backup there warned of (``BackupResult/cacheProblem``: the
    /// backup cache or the list of damaged packs), when it did.
    var warnings: [String: String] = [:]
    /// Each target's size as last measured (``Agent/measureStorage(_:)``).
    var storage: [String: AgentStatus.TargetStorage] = [:]
    /// The last restore drill run by the agent (`POST /v1/backups/drill`).
    var drill: DrillResult?
    public init() {}
}

/// How far the backup running now has got, for `GET /v1/backups/progress` (the dashboard's
/// Backup now): its target, phase and counts, as the repository reports them.
final class BackupProgressBoard: Sendable {
    private let state = Mutex<(target: String, phase: String, done: Int, total: Int)?>(nil)

    func update(target: String, phase: String, done: Int, total: Int) {
        state.withLock { $0 = (target, phase, done, total) }
    }

    func finish() { state.withLock { $0 = nil } }

    var json: Value {
        guard let s = state.withLock({ $0 }) else { return ["running": false] }
        return ["running": true, "target": .string(s.target), "phase": .string(s.phase), "done": .int(Int64(s.done)),
                "total": .int(Int64(s.total))]
    }
}

/// The agent takes `backup now` itself on the configured interval (`"backup"` in config.json),
/// applies the retention rules (forget, without prune), and reports a backup older than the
/// recovery point as a warning in status.
extension Agent {
    static let backupStateFile = DataDirectory.backupStateFile

    /// Runs the schedule until shutdown; idle when no interval or target is configured.
    struct BackupService: Service {
        let agent: Agent

        /// Waits for the next backup's time, or for SIGHUP's new settings (then looks again).
        func run() async throws {
            await agent.loadBackupState()
            // The targets' sizes for status, before the first backup of this run.
            if let schedule = agent.configuration.backup { await agent.measureStorage(schedule.targets, schedule) }
            let changes = agent.configurationChanges.subscribe()
            defer { agent.configurationChanges.unsubscribe(changes) }
            do {
                try await cancelWhenGracefulShutdown {
                    var retryAt: ContinuousClock.Instant?
                    while true {
                        guard let schedule = agent.configuration.backup, schedule.intervalSeconds > 0, !schedule.targets.isEmpty else {
                            guard await changes.wait() else { throw CancellationError() }
                            continue
                        }
                        let now = UInt64(Date().timeIntervalSince1970 * 1000)
                        let due = (agent.backupState.withLock { $0.last } ?? 0) + UInt64(schedule.intervalSeconds) * 1000
                        var at = ContinuousClock.now + .milliseconds(Int64(due > now ? due - now : 0))
                        // After a failure, try again after the interval too (not in a tight loop).
                        if let retryAt, retryAt > at { at = retryAt }
                        switch await changes.wait(until: at) {
                        case .signalled: continue
                        case .ended: throw CancellationError()
                        case .timedOut: break
                        }
                        await agent.runScheduledBackups(schedule)
                        retryAt = agent.backupState.withLock({ $0.error != nil }) ? .now + .seconds(schedule.intervalSeconds) : nil
                    }
                }
            } catch is CancellationError {
                return
            }
        }
    }

    /// One backup to each target, in order; the state records the last success and any failure.
    /// Answers each target's snapshot ID (hex) or why it failed. `manual` is a backup someone
    /// asked for (the dashboard's Backup now), said so in the log and the audit journal.
    @discardableResult
    func runScheduledBackups(_ schedule: BackupSchedule, manual: Bool = false) async -> [(target: String, result: Result<BackupDone, BackupFailure>)] {
        let kind = manual ? "backup" : "scheduled backup"
        var failure: (String, String)?
        var results: [(target: String, result: Result<BackupDone, BackupFailure>)] = []
        defer { backupProgress.finish() }
        for text in schedule.targets {
            do {
                let start = ContinuousClock.now
                backupProgress.update(target: text, phase: "starting", done: 0, total: 0)
                let (snapshot, size, unreadable, warning) = try await BlockingIO.run { try self.backupOnce(to: text, schedule) }
                let took = (ContinuousClock.now - start).components
                let seconds = Double(took.seconds) + Double(took.attoseconds) / 1e18
                backupState.withLock {
                    $0.last = snapshot.time
                    $0.snapshot = snapshot.id.hex
                    $0.target = text
                    $0.unreadable[text] = unreadable.isEmpty ? nil : unreadable.map(\.message)
                    $0.warnings[text] = warning
                }
                for u in unreadable {
                    logger.warning("a snapshot of the backup target cannot be read", metadata: ["target": "\(text)", "error": "\(u.message)"])
                }
                logger.info("\(kind) done", metadata: ["target": "\(text)", "snapshot": "\(snapshot.id.short)"])
                metrics.noteBackup(target: text, finished: Store.systemClock(), seconds: seconds, repositoryBytes: size)
                await recordAudit(.backup, subject: ["target": text, "snapshot": snapshot.id.hex, "records": "\(snapshot.records)"],
                                  detail: (manual ? "Backup now: " : "scheduled backup of ") + "\(plural(snapshot.records, "record")) to \(text)")
                results.append((text, .success(BackupDone(snapshot: snapshot.id.hex, warning: warning))))
            } catch {
                let message = (error as? BackupError)?.message ?? "\(error)"
                failure = (text, message)
                results.append((text, .failure(BackupFailure(message: message))))
                metrics.count(.backup)
                logger.warning("\(kind) failed", metadata: ["target": "\(text)", "error": "\(message)"])
            }
            await measureStorage([text], schedule)
        }
        backupState.withLock {
            $0.error = failure?.1
            $0.errorTarget = failure?.0
        }
        await saveBackupState()
        return results
    }

    /// Why a backup to one target failed, in words.
    struct BackupFailure: Error {
        let message: String
    }

    /// A backup to one target that was taken: its snapshot, and what it warned of, if anything.
    struct BackupDone {
        let snapshot: String
        let warning: String?
    }

    /// `hubsync backup now` for one target, in this process; then the retention rules. Blocking
    /// (files, sockets, SQLite): it runs on the blocking-I/O pool.
    func backupOnce(to text: String, _ schedule: BackupSchedule) throws -> (Snapshot, Int?, [UnreadableSnapshot], String?) {
        let (repo, household, target) = try repository(text, schedule, create: true)
        let host = ProcessInfo.processInfo.hostName
        let holder = "the agent on \(host) (pid \(getpid()))"
        // The snapshot carries the device's name, as `hubsync backup now` gives it.
        let name = DeviceNames.configuredName(in: writerLock.directory) ?? host
        let result = try repo.backup(store: store, device: identity.deviceID.description, hostname: name,
                                     household: household, holder: holder, signer: identity.signingKey,
                                     cacheFolder: writerLock.directory.file(DataDirectory.backupCacheFolder),
                                     progress: { [backupProgress] phase, done, total in
                                         backupProgress.update(target: text, phase: phase, done: done, total: total)
                                     })
        if let problem = result.cacheProblem { logger.warning("\(problem)", metadata: ["target": "\(text)"]) }
        if !schedule.retention.isEmpty { _ = try repo.forget(policy: schedule.retention, holder: holder) }
        // Damage is reported now, not found on the day a restore is needed.
        return (result.snapshot, try? repositoryBytes(at: target), (try? repo.scanSnapshots().unreadable) ?? [], result.cacheProblem)
    }

    /// Measures the repository size of each of `targets` (and a peer's usage and quota) for
    /// status' `"storage"`; a target that cannot be read keeps its last figures with the reason.
    func measureStorage(_ targets: [String], _ schedule: BackupSchedule) async {
        for text in targets {
            let measured: AgentStatus.TargetStorage = (try? await BlockingIO.run { () -> AgentStatus.TargetStorage in
                var m = AgentStatus.TargetStorage(target: text)
                do {
                    let (_, _, target) = try self.repository(text, schedule, create: false)
                    m.repositoryBytes = try repositoryBytes(at: target)
                    if let peer = target as? PeerTarget {
                        let usage = try peer.usage()
                        m.peerUsedBytes = usage.used
                        m.peerQuotaBytes = usage.quota
                    }
                    m.measuredAt = isoTime(Timestamp(millis: Store.systemClock(), counter: 0))
                } catch {
                    m.problem = Self.backupMessage(error)
                }
                return m
            }) ?? AgentStatus.TargetStorage(target: text, problem: "the target could not be measured")
            backupState.withLock { s in
                guard let problem = measured.problem, var old = s.storage[text], old.measuredAt != nil else {
                    s.storage[text] = measured
                    return
                }
                old.problem = problem
                s.storage[text] = old
            }
        }
    }

    /// The `"storage"` part of status: the store's files, and each configured target as last measured.
    func storageStatus() -> AgentStatus.Storage {
        let files = [store.path, store.path + "-wal", store.path + "-shm"]
        let bytes = files.reduce(0) { total, path in
            total + ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
        }
        let targets = configuration.backup?.targets ?? []
        let measured = backupState.withLock { $0.storage }
        return AgentStatus.Storage(storeBytes: bytes, targets: targets.map {
            measured[$0] ?? AgentStatus.TargetStorage(target: $0, problem: "not measured yet (it is after each backup)")
        })
    }

    /// The repository of a configured target, created when `create` and it does not exist yet
    /// (nil when it does not exist and `create` is false). Blocking.
    func repository(_ text: String, _ schedule: BackupSchedule, create: Bool) throws -> (Repository, HouseholdSecrets, any BackupTarget) {
        let household = try self.household.current.secretsForBackup(in: DataDirectory(path: directory))
        let target = try makeTarget(text, s3: schedule.s3, peer: { id throws(BackupError) in try self.peerTarget(id) })
        guard try Repository.exists(at: target) else {
            guard create else { throw BackupError(.notFound, "no repository at \(text) yet; Backup now creates it") }
            return (try Repository.create(at: target, household: household), household, target)
        }
        return (try Repository.open(at: target, household: household, recoveryKey: nil), household, target)
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
              let o = (try? JSON.parse([UInt8](data)))?.objectValue else { return }
        backupState.withLock {
            if case .int(let last) = o["last"] ?? .null {
                $0.last = UInt64(last)
                $0.snapshot = o["snapshot"]?.stringValue
                $0.target = o["target"]?.stringValue
            }
            if let d = o["drill"]?.objectValue, let target = d["target"]?.stringValue, let snapshot = d["snapshot"]?.stringValue,
               case .int(let at) = d["at"] ?? .null {
                let number = { (v: Value?) -> Double in
                    switch v { case .double(let x)?: x; case .int(let n)?: Double(n); default: 0 }
                }
                $0.drill = DrillResult(target: target, snapshot: snapshot, at: UInt64(at),
                                       recoveryTimeSeconds: number(d["recovery_time_seconds"]),
                                       recoveryPointSeconds: number(d["recovery_point_seconds"]),
                                       problems: (d["problems"]?.arrayValue ?? []).compactMap(\.stringValue))
            }
        }
    }

    /// Keeps a drill run without an agent (`hubsync backup drill`, the directory's writer lock
    /// held by the caller) in `DATA/backup-state.json`, for status and the Backups tab once the
    /// agent starts; the rest of the file stays as it is.
    public static func recordDrill(target: String, report: DrillReport, in directory: DataDirectory) throws {
        let path = directory.path + "/" + backupStateFile
        var o = FileManager.default.contents(atPath: path).flatMap { try? JSON.parse([UInt8]($0)) }?.objectValue ?? [:]
        o["drill"] = DrillResult(target: target, report: report).fileJSON
        try directory.writeAtomically(Array((JSON.serialize(.object(o)) + "\n").utf8), to: backupStateFile, mode: 0o600)
    }

    /// Saves what the scheduled backups did last (`DATA/backup-state.json`).
    func saveBackupState() async {
        let s = backupState.withLock { $0 }
        guard s.last != nil || s.drill != nil else { return }
        let v: Value = ["last": s.last.map { .int(Int64($0)) } ?? .null, "snapshot": s.snapshot.map { .string($0) } ?? .null,
                        "target": s.target.map { .string($0) } ?? .null,
                        "drill": s.drill.map(\.fileJSON) ?? .null]
        let directory = writerLock.directory
        do {
            try await BlockingIO.run {
                try directory.writeAtomically(Array((JSON.serialize(v) + "\n").utf8), to: Self.backupStateFile, mode: 0o600)
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
        for (target, messages) in s.unreadable.sorted(by: { $0.key < $1.key }) {
            warning = (warning.map { $0 + "; " } ?? "") + "\(target): \(messages.joined(separator: "; "))"
        }
        for (target, message) in s.warnings.sorted(by: { $0.key < $1.key }) where schedule.targets.contains(target) {
            warning = (warning.map { $0 + "; " } ?? "") + "the last backup to \(target) warned: \(message)"
        }
        return AgentStatus.Backup(targets: schedule.targets, intervalSeconds: schedule.intervalSeconds,
                                  recoveryPointSeconds: point, last: s.last.map { isoTime(Timestamp(millis: $0, counter: 0)) },
                                  ageSeconds: age, snapshot: s.snapshot, target: s.target, warning: warning,
                                  lastDrill: s.drill?.status)
    }
}
