import Foundation
public import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore

/// What a restore drill found: the latest snapshot restored into a scratch store and checked.
public struct DrillReport: Sendable {
    public var snapshot: Snapshot
    /// Records restored.
    public var records: Int
    /// How long the restore took (the recovery time).
    public var recoveryTimeSeconds: Double
    /// How old the snapshot was (the recovery point).
    public var recoveryPointSeconds: Double
    /// What the checks found wrong; empty when the restored store is sound.
    public var problems: [String]
}

extension Repository {
    /// Restores `snapshot` into a scratch store in the system's temporary directory (removed
    /// afterwards), then checks it: SQLite's integrity, every record's digest, the record count
    /// and the counts per collection against the snapshot's.
    public func drill(_ snapshot: Snapshot, progress: BackupProgress = { _, _, _ in }) throws(BackupError) -> DrillReport {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("hubsync-drill-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let started = ContinuousClock.now
        let store: Store
        do {
            let identity = try Identity.create(in: scratch)
            store = try Store(path: scratch.path + "/store.sqlite", device: identity.deviceID)
        } catch {
            throw BackupError(.io, "cannot make the drill's scratch store in \(scratch.path): \(error)")
        }
        let report = try restore(snapshot, into: store, skipDamaged: false, progress: progress)
        let took = (ContinuousClock.now - started).components
        var problems: [String] = []
        do {
            let integrity = try store.integrityCheck()
            if integrity != "ok" { problems.append("SQLite integrity check: \(integrity)") }
            let bad = try store.verifyDigests()
            if !bad.isEmpty { problems.append("\(bad.count) records do not match their digests") }
            if report.records != snapshot.records {
                problems.append("restored \(report.records) records; the snapshot holds \(snapshot.records)")
            }
            if try store.counts() != snapshot.collections.filter({ $0.value > 0 }) {
                problems.append("live record counts differ from the snapshot's")
            }
        } catch {
            problems.append("the restored store could not be checked: \(error.message)")
        }
        return DrillReport(snapshot: snapshot, records: report.records,
                           recoveryTimeSeconds: Double(took.seconds) + Double(took.attoseconds) / 1e18,
                           recoveryPointSeconds: snapshot.age(), problems: problems)
    }
}
