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
}

extension Repository {
    /// Restores `snapshot` onto a new device in `directory` (disaster recovery, a replacement
    /// laptop): a new identity unless one is there, the household's secrets (from the manifest,
    /// or a household entry signed by a member of the restored membership; 5.5),
    /// `device.json`, and a store holding every record and the clock exactly as in the snapshot.
    ///
    /// Takes the directory's writer lock for the duration. What it creates is removed again if it
    /// fails, so it can simply be run again.
    public func restoreNewDevice(_ snapshot: Snapshot, into directory: DataDirectory, deviceName: String,
                                 skipDamaged: Bool, only: RecordKey? = nil,
                                 progress: BackupProgress = { _, _, _ in }) throws(BackupError) -> NewDeviceRestore {
        let files = FileManager.default
        if files.fileExists(atPath: directory.storePath) {
            throw BackupError(.invalidInput, "\(directory.path) already holds a store; --into takes a new data directory "
                + "(to restore into this device's stores use --merge or --revert)")
        }
        if let problem = FolderPlacement.problem(directory.path, what: "a restored device") {
            throw BackupError(.invalidInput, problem + "; nothing was written")
        }
        var created: [String] = []
        var succeeded = false
        defer {
            if !succeeded { for path in created.reversed() { try? files.removeItem(atPath: path) } }
        }
        if !files.fileExists(atPath: directory.path) { created.append(directory.path) }
        do {
            let identity: Identity
            if Identity.exists(in: directory.url) {
                identity = try Identity.load(from: directory.url)
            } else {
                identity = try Identity.create(in: directory.url)
                created.append(Identity.keyFileURL(in: directory.url).path)
            }
            let hadLock = files.fileExists(atPath: directory.lockPath)
            guard let lock = try WriterLock.acquire(in: directory, role: "backup restore") else {
                let holder = WriterLock.holder(in: directory)
                throw BackupError(.invalidInput, "\(holder?.description ?? "another process") holds \(directory.path); "
                    + "a restore onto a new device needs the directory to itself")
            }
            defer { withExtendedLifetime(lock) {} }
            if !hadLock { created.append(directory.lockPath) }
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
            // The household: the manifest's (old snapshots), or a signed entry whose signer is a
            // member in the membership just restored; never an entry anyone could have planted.
            var household: HouseholdSecrets?
            var note: String?
            if needsHousehold {
                (household, note) = try self.household(for: snapshot, restoredInto: store)
                if let household {
                    try HouseholdFile.writeSecrets(household, in: directory, replacing: false)
                    created.append(directory.file(DataDirectory.householdFile))
                }
            }
            succeeded = true
            return NewDeviceRestore(deviceID: identity.deviceID, report: report, clock: store.lastClock,
                                    household: household, householdNote: note)
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
