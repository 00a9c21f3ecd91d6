#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A device's data directory: the one place that names its files, writes them atomically and
/// holds the writer lock.
///
/// While an agent runs on a directory it holds ``WriterLock`` for its lifetime and is the only
/// writer of the store and the household files; without an agent, a command takes the lock
/// itself for as long as it writes.
public struct DataDirectory: Sendable, Hashable {
    /// The directory's path, as given.
    public let path: String

    public init(path: String) { self.path = path }

    /// The device's identity key (Ed25519, mode 0600).
    public static let identityFile = "identity.key"
    /// The store, one SQLite file in WAL mode.
    public static let storeFile = "store.sqlite"
    /// The household's secrets (mode 0600): group ID, key epoch, group key, recovery public key.
    public static let householdFile = "household.key"
    /// Where versions before one household kept pairing's copy of the household's secrets; read
    /// once to migrate a data directory into ``householdFile``, then removed.
    public static let legacyGroupSecretsFile = "pairing-group.key"
    /// The household's signed membership statements.
    public static let statementsFile = "membership.statements"
    /// What a running agent bound: `{"pid", "listen", "api", "device_id"}`.
    public static let agentStateFile = "agent.json"
    /// The local API's bearer token (mode 0600).
    public static let tokenFile = "api.token"
    /// The token that reads `GET /metrics` and nothing else (what Prometheus is given).
    public static let metricsTokenFile = "metrics.token"
    /// Settings (`//` comment lines allowed).
    public static let configFile = "config.json"
    /// The name given at `hubsync init`.
    public static let deviceFile = "device.json"
    /// What the scheduled backups did last.
    public static let backupStateFile = "backup-state.json"
    /// Who holds the writer lock (`PID ROLE`), written by the holder: a hint for messages. The
    /// lock itself is an flock on the directory (``WriterLock``).
    public static let lockFile = "writer.lock"
    /// The folder where this device keeps other devices' backups (peer storage).
    public static let peerBackupsFolder = "backups"
    /// Present while `backup restore --into` fills the directory: one left behind marks a restore
    /// that was stopped before its end (killed, power cut), whose store is incomplete.
    public static let unfinishedRestoreFile = "restore.unfinished"
    /// The folder of backup caches, one file per repository: what the last backup to it read
    /// (a hint that lets the next one read only what changed; deleting it costs one full read).
    public static let backupCacheFolder = "backup-cache"

    /// The path of a file in the directory.
    public func file(_ name: String) -> String { path + "/" + name }

    public var url: URL { URL(fileURLWithPath: path) }
    public var storePath: String { file(Self.storeFile) }
    public var agentStatePath: String { file(Self.agentStateFile) }
    public var tokenPath: String { file(Self.tokenFile) }
    public var configPath: String { file(Self.configFile) }
    public var lockPath: String { file(Self.lockFile) }

    /// Why the store cannot be opened as this device's, read from the file without opening it
    /// (SQLite, opening a damaged file, may fold its WAL into it and delete the WAL, changing the
    /// very file `hubsync repair` keeps aside): when a device lives here (its identity key is) but
    /// the store file is gone, empty, shorter than its header says, or not SQLite at all. `init`
    /// makes the store with the device's name record in it, so an absent store lost its records,
    /// and opening it would start an empty one silently. Nil when the file looks whole (SQLite's
    /// integrity check goes further), or no device is here.
    public var missingStoreProblem: String? {
        let fm = FileManager.default
        if fm.fileExists(atPath: file(Self.unfinishedRestoreFile)) { return unfinishedRestoreProblem }
        guard fm.fileExists(atPath: file(Self.identityFile)) else { return nil }
        if let target = try? fm.destinationOfSymbolicLink(atPath: storePath), !fm.fileExists(atPath: storePath) {
            return "\(Self.storeFile) in \(path) is a symbolic link to \(target), which does not exist: the store's records are "
                + "not there. Nothing was changed. Bring back the disk or file it points to, or remove the link and run "
                + "`hubsync repair --data \(path)` to build a new store under the same device"
        }
        // Through a symbolic link to the file it names (the link's own length is not the store's).
        let attributes = try? fm.attributesOfItem(atPath: URL(fileURLWithPath: storePath).resolvingSymlinksInPath().path)
        let size = (attributes?[.size] as? NSNumber)?.intValue
        let problem: String
        if attributes?[.type] as? FileAttributeType == .typeDirectory {
            let link = (try? fm.destinationOfSymbolicLink(atPath: storePath)).map { " (a symbolic link to \($0))" } ?? ""
            return "\(Self.storeFile) in \(path) is a folder\(link), not the store file. Nothing was changed. "
                + (link.isEmpty ? "Move that folder away; " : "Remove the link (rm \(storePath)); ")
                + "then `hubsync repair --data \(path)` builds a new store under the same device (from a backup with "
                + "--from-backup TARGET, and from the household's peers as the agent syncs)"
        }
        switch size {
        case nil: problem = "is missing from \(path), which holds a device: its records are not here"
        case 0?: problem = "in \(path) is empty (0 bytes): its records are not here"
        case let size?:
            guard let header = Self.header(of: storePath) else { return nil }
            if header.count < 100 {
                problem = "in \(path) is cut short (\(size) bytes, less than SQLite's 100-byte header)"
            } else if !header.starts(with: Array("SQLite format 3\0".utf8)) {
                problem = "in \(path) is not an SQLite database (its first bytes are not SQLite's)"
            } else if let expected = Self.expectedSize(header), size < expected, Self.walIsEmpty(storePath) {
                // With frames in the WAL the header may run ahead of the file (a checkpoint that
                // a full disk cut short): SQLite finishes it from the WAL, so only without one
                // is a shorter file cut.
                problem = "in \(path) is cut short: \(size) bytes of the \(expected) its header counts"
            } else {
                return nil
            }
        }
        return "\(Self.storeFile) \(problem). Nothing was changed. Rebuild "
            + "the store under the same device with `hubsync repair --data \(path)` (it keeps the damaged files aside, salvages "
            + "what it can read and fills from the household's peers; add --from-backup TARGET to start from a backup)"
    }

    /// What to say of a directory that holds a restore that has not finished.
    public var unfinishedRestoreProblem: String {
        "\(path) holds a restore (backup restore --into) that has not finished: one is running, or it was stopped "
            + "before its end and its store is incomplete. Nothing was changed. If no restore runs, delete \(path) and run "
            + "the restore again"
    }

    /// Whether the store's WAL is absent or empty.
    static func walIsEmpty(_ storePath: String) -> Bool {
        ((try? FileManager.default.attributesOfItem(atPath: storePath + "-wal")[.size] as? NSNumber)?.intValue ?? 0) == 0
    }

    /// The first 100 bytes of a file (fewer when it is shorter), or nil when it cannot be read.
    static func header(of path: String) -> [UInt8]? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 100)).map { [UInt8]($0) } ?? []
    }

    /// The size the SQLite file at `path` has by its header; nil when the header does not say.
    public static func sizeByHeader(of path: String) -> Int? {
        guard let h = header(of: path), h.count >= 100 else { return nil }
        return expectedSize(h)
    }

    /// The database's size by its header (page size × page count), when the header's count is
    /// valid (its change counter equals its version-valid-for number, as SQLite requires).
    static func expectedSize(_ h: [UInt8]) -> Int? {
        func u32(_ i: Int) -> Int { Int(h[i]) << 24 | Int(h[i + 1]) << 16 | Int(h[i + 2]) << 8 | Int(h[i + 3]) }
        let raw = Int(h[16]) << 8 | Int(h[17])
        let pageSize = raw == 1 ? 65536 : raw
        let pages = u32(28)
        guard pageSize >= 512, pages > 0, u32(24) == u32(92) else { return nil }
        return pageSize * pages
    }

    /// Keeps the directory private: makes it mode 0700 and every file in it 0600 (the store and
    /// its `-wal` and `-shm` too; SQLite gives those the store's mode). A directory of another
    /// user that others may reach is refused. Returns the names it fixed.
    @discardableResult
    public func keepPrivate() throws(SystemCallError) -> [String] {
        var fixed: [String] = []
        var status = stat()
        try SystemCallError.check("stat", path) { stat(path, &status) }
        if status.st_mode & 0o077 != 0 {
            guard status.st_uid == geteuid() else {
                throw SystemCallError(call: "chmod", path: path, errno: EPERM)
            }
            try SystemCallError.check("chmod", path) { chmod(path, 0o700) }
            fixed.append(".")
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in names.sorted() {
            let full = file(name)
            var s = stat()
            guard lstat(full, &s) == 0, s.st_mode & S_IFMT == S_IFREG, s.st_mode & 0o077 != 0, s.st_uid == geteuid() else { continue }
            try SystemCallError.check("chmod", full) { chmod(full, 0o600) }
            fixed.append(name)
        }
        return fixed
    }

    /// The bytes of a file in the directory, or nil when it does not exist or cannot be read.
    public func contents(of name: String) -> [UInt8]? {
        FileManager.default.contents(atPath: file(name)).map { [UInt8]($0) }
    }

    /// Writes `bytes` as the file `name` through an ``AtomicFile``: a crash leaves either the old
    /// or the new file.
    public func writeAtomically(_ bytes: [UInt8], to name: String, mode: mode_t = 0o600) throws(SystemCallError) {
        try Self.writeAtomically(bytes, toPath: file(name), mode: mode)
    }

    /// ``writeAtomically(_:to:mode:)`` for any path (the temporary file sits beside it).
    public static func writeAtomically(_ bytes: [UInt8], toPath path: String, mode: mode_t = 0o600) throws(SystemCallError) {
        let file = try AtomicFile(path: path, mode: mode)
        try file.write(bytes)
        try file.commit()
    }

    /// ``writeAtomically(_:toPath:mode:)`` from memory the caller owns (a secret that must not be
    /// copied into an array). With `replacing` false an existing file is left alone and the result
    /// is false: what must never be overwritten (an identity, new household secrets).
    @discardableResult
    public static func writeAtomically(_ bytes: UnsafeRawBufferPointer, toPath path: String, mode: mode_t = 0o600,
                                       replacing: Bool) throws(SystemCallError) -> Bool {
        let file = try AtomicFile(path: path, mode: mode)
        try file.write(bytes)
        return try file.commit(replacing: replacing)
    }
}
