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
    /// The household's secrets for backups: group ID, group key, recovery public key.
    public static let householdFile = "household.key"
    /// The household's secrets for pairing and membership.
    public static let groupSecretsFile = "pairing-group.key"
    /// The household's signed membership statements.
    public static let statementsFile = "membership.statements"
    /// What a running agent bound: `{"pid", "listen", "api", "device_id"}`.
    public static let agentStateFile = "agent.json"
    /// The local API's bearer token (mode 0600).
    public static let tokenFile = "api.token"
    /// Settings (`//` comment lines allowed).
    public static let configFile = "config.json"
    /// The name given at `hubsync init`.
    public static let deviceFile = "device.json"
    /// What the scheduled backups did last.
    public static let backupStateFile = "backup-state.json"
    /// Held (flock) by the process that writes the store: the agent, or a command when none runs.
    public static let lockFile = "writer.lock"
    /// The folder where this device keeps other devices' backups (peer storage).
    public static let peerBackupsFolder = "backups"

    /// The path of a file in the directory.
    public func file(_ name: String) -> String { path + "/" + name }

    public var url: URL { URL(fileURLWithPath: path) }
    public var storePath: String { file(Self.storeFile) }
    public var agentStatePath: String { file(Self.agentStateFile) }
    public var tokenPath: String { file(Self.tokenFile) }
    public var configPath: String { file(Self.configFile) }
    public var lockPath: String { file(Self.lockFile) }

    /// The bytes of a file in the directory, or nil when it does not exist or cannot be read.
    public func contents(of name: String) -> [UInt8]? {
        FileManager.default.contents(atPath: file(name)).map { [UInt8]($0) }
    }

    /// Writes `bytes` as the file `name`: a temporary file in the directory, written in full,
    /// synced, then renamed over the old one, so a crash leaves either the old or the new file.
    public func writeAtomically(_ bytes: [UInt8], to name: String, mode: mode_t = 0o600) throws(SystemCallError) {
        try Self.writeAtomically(bytes, toPath: file(name), mode: mode)
    }

    /// ``writeAtomically(_:to:mode:)`` for any path (the temporary file sits beside it).
    public static func writeAtomically(_ bytes: [UInt8], toPath path: String, mode: mode_t = 0o600) throws(SystemCallError) {
        let temporary = path + ".tmp-" + String(UInt64.random(in: .min ... .max), radix: 16)
        let fd = try SystemCallError.check("open", temporary) { open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode) }
        var isOpen = true
        do throws(SystemCallError) {
            var written = 0
            while written < bytes.count {
                written += try SystemCallError.check("write", temporary) {
                    bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
                }
            }
            try SystemCallError.check("fsync", temporary) { fsync(fd) }
            close(fd)
            isOpen = false
            try SystemCallError.check("rename", path) { rename(temporary, path) }
        } catch {
            if isOpen { close(fd) }
            unlink(temporary)
            throw error
        }
    }
}
