import Foundation
public import HubSyncBase
public import HubSyncCore
public import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore

/// What restoring onto a new device made.
public struct NewDeviceRestore: Sendable {
    /// The new device's ID (a new identity, unless the directory already had one).
    public var deviceID: DeviceID
    public var report: ReadReport
    /// The restored store's clock: at least the snapshot's.
    public var clock: Timestamp
    /// The household secrets the device took (from the manifest, or a signed household entry
    /// whose signer the restored membership names), or nil.
    public var household: HouseholdSecrets?
    /// Why no household was taken when entries were there but none could be trusted.
    public var householdNote: String?
    /// Whether ``household`` is the restoring device's own (`ownHousehold`), not the repository's.
    public var householdFromRestoringDevice = false
}

extension Repository {
    /// Restores `snapshot` onto a new device in `directory` (disaster recovery, a replacement
    /// laptop): a new identity unless one is there, the household's secrets (from the manifest,
    /// or a household entry signed by a member of the restored membership; 5.5),
    /// `device.json`, and a store holding every record and the clock exactly as in the snapshot.
    ///
    /// Takes the directory's writer lock for the duration. What it creates is removed again if it
    /// fails, so it can simply be run again.
    ///
    /// `ownHousehold`: the secrets of the household device restoring (which opened the repository
    /// with them), taken when the repository gives none (it gives them only to the recovery key).
    public func restoreNewDevice(_ snapshot: Snapshot, into directory: DataDirectory, deviceName: String,
                                 skipDamaged: Bool, only: RecordKey? = nil, ownHousehold: HouseholdSecrets? = nil,
                                 progress: BackupProgress = { _, _, _ in }) throws(BackupError) -> NewDeviceRestore {
        let files = FileManager.default
        if files.fileExists(atPath: directory.file(DataDirectory.unfinishedRestoreFile)) {
            throw BackupError(.invalidInput, directory.unfinishedRestoreProblem)
        }
        if files.fileExists(atPath: directory.storePath) {
            throw BackupError(.invalidInput, "\(directory.path) already holds a store; --into takes a new data directory "
                + "(to restore into this device's stores use --merge or --revert)")
        }
        guard directory.path.hasPrefix("/") else {
            throw BackupError(.invalidInput, "\(directory.path): --into takes an absolute path (a new or empty folder), such as "
                + "/home/me/hubsync-restored; nothing was written")
        }
        if let problem = FolderPlacement.problem(directory.path, what: "a restored device") {
            throw BackupError(.invalidInput, problem + "; nothing was written")
        }
        // A new or empty folder: a device's files beside someone else's would change their modes
        // (the directory is made private) and mix with them, whatever their names (a person's
        // own config.json included). Only a writer lock a failed restore left may be there.
        let own: Set = [DataDirectory.lockFile]
        let other = ((try? files.contentsOfDirectory(atPath: directory.path)) ?? []).filter { !own.contains($0) }.sorted()
        if !other.isEmpty, other.allSatisfy({ $0.hasPrefix(".tmp-") }) {
            throw BackupError(.invalidInput, "another process is writing into \(directory.path) right now (a restore into the same "
                + "folder); --into takes a new or empty folder, nothing was written")
        }
        if !other.isEmpty {
            throw BackupError(.invalidInput, "\(directory.path) holds other files (\(other.prefix(3).joined(separator: ", "))"
                + (other.count > 3 ? ", …" : "") + "); --into takes a new or empty folder, nothing was written")
        }
        var isFolder: ObjCBool = false
        if files.fileExists(atPath: directory.path, isDirectory: &isFolder), !isFolder.boolValue {
            throw BackupError(.invalidInput, "\(directory.path) is a file; --into takes a new or empty folder, nothing was written")
        }
        var created: [String] = []
        var createdFolder = false
        var succeeded = false
        defer {
            if !succeeded {
                // Only what this restore wrote goes: files by name, its folder only when empty
                // (another writer's files in it stay).
                for path in created.reversed() { try? files.removeItem(atPath: path) }
                if createdFolder { rmdir(directory.path) }
            }
        }
        do {
            // The folder is made here with one mkdir, so of two restores into one new folder only
            // one made it; its parents are made as needed.
            let parent = (directory.path as NSString).deletingLastPathComponent
            if !files.fileExists(atPath: parent) { try files.createDirectory(atPath: parent, withIntermediateDirectories: true) }
            if mkdir(directory.path, 0o700) == 0 {
                createdFolder = true
            } else if errno != EEXIST {
                throw BackupError(.io, "cannot create \(directory.path): \(Errno.message(errno)); nothing was written")
            }
            // The lock first: a second restore into the same folder is refused here, before it writes.
            let hadLock = files.fileExists(atPath: directory.lockPath)
            guard let lock = try WriterLock.acquire(in: directory, role: "backup restore") else {
                let holder = WriterLock.holder(in: directory)
                throw BackupError(.invalidInput, "\(holder?.description ?? "another process") holds \(directory.path); "
                    + "a restore onto a new device needs the directory to itself; nothing was written")
            }
            defer { withExtendedLifetime(lock) {} }
            if !hadLock { created.append(directory.lockPath) }
            // Looked at again under the lock: another restore may have filled it meanwhile.
            let others = ((try? files.contentsOfDirectory(atPath: directory.path)) ?? []).filter { !own.contains($0) }
            if files.fileExists(atPath: directory.storePath) || !others.isEmpty {
                throw BackupError(.invalidInput, "\(directory.path) was written by another process meanwhile; --into takes a new "
                    + "or empty folder, nothing was written")
            }
            // Until the end, the directory says it holds an unfinished restore: a restore killed
            // midway leaves a device whose store lacks records, and every command says so.
            let marker = directory.file(DataDirectory.unfinishedRestoreFile)
            try directory.writeAtomically(Array("backup restore --into, started \(Date())\n".utf8),
                                          to: DataDirectory.unfinishedRestoreFile, mode: 0o600)
            created.append(marker)
            let identity: Identity
            if Identity.exists(in: directory.url) {
                identity = try Identity.load(from: directory.url)
            } else {
                identity = try Identity.create(in: directory.url)
                created.append(Identity.keyFileURL(in: directory.url).path)
            }
            let needsHousehold = try HouseholdFile.read(in: directory).secrets == nil
            created += [directory.storePath, directory.storePath + "-wal", directory.storePath + "-shm"]
            let devicePath = directory.file(DataDirectory.deviceFile)
            if !files.fileExists(atPath: devicePath) {
                let device: Value = ["name": .string(deviceName), "device_id": .string(identity.deviceID.description)]
                try directory.writeAtomically(Array((JSON.serialize(device) + "\n").utf8), to: DataDirectory.deviceFile, mode: 0o600)
                created.append(devicePath)
            }
            let store = try Store(path: directory.storePath, device: identity.deviceID)
            try directory.keepPrivate()
            let report = try restore(snapshot, into: store, skipDamaged: skipDamaged, only: only, progress: progress)
            if let only, report.records == 0 {
                // A new device without the one record asked for is no restore: nothing is left behind.
                let damaged = !report.skippedChunks.isEmpty
                throw BackupError(damaged ? .damaged : .invalidInput, report.whyNotRead(only, from: snapshot)
                    + (damaged ? "; restore it from an older snapshot (`hubsync backup list`)" : "") + "; nothing was written")
            }
            if report.records == 0, snapshot.records > 0 {
                // Every chunk unreadable (with --skip-damaged): an empty device is no restore either.
                throw BackupError(.damaged, "no record of snapshot \(snapshot.id.short) could be read (\(plural(report.skippedChunks.count, "unreadable chunk")), "
                    + "damaged or missing); nothing was written. Run `hubsync backup verify --read-data`, or "
                    + "restore an older snapshot (`hubsync backup list`)")
            }
            // The household: the manifest's (old snapshots), or a signed entry whose signer is a
            // member in the membership just restored; never an entry anyone could have planted.
            var household: HouseholdSecrets?
            var note: String?
            var tookOwn = false
            if needsHousehold {
                (household, note) = try self.household(for: snapshot, restoredInto: store)
                if household == nil, note == nil, let ownHousehold {
                    household = ownHousehold
                    tookOwn = true
                }
                if let household {
                    try HouseholdFile.writeSecrets(household, in: directory, replacing: false)
                    created.append(directory.file(DataDirectory.householdFile))
                }
            }
            try files.removeItem(atPath: marker)
            try AtomicFile.syncFolder(of: marker)
            succeeded = true
            return NewDeviceRestore(deviceID: identity.deviceID, report: report, clock: store.lastClock,
                                    household: household, householdNote: note, householdFromRestoringDevice: tookOwn)
        } catch let e as BackupError {
            throw e
        } catch let e as IdentityError {
            throw BackupError(.io, e.message)
        } catch let e as HouseholdError {
            throw BackupError(.io, e.message)
        } catch let e as StoreError {
            throw BackupError(.io, e.message)
        } catch let e as SystemCallError {
            throw BackupError(.io, "cannot write \(e.path): \(e.reason)")
        } catch {
            throw BackupError(.io, "\(error)")
        }
    }
}
