import HubSyncBase
public import HubSyncS3
import Foundation

/// Where a repository's files live: a flat namespace of named, immutable files.
///
/// Names are relative paths such as `config`, `keys/group-…`, `data/ab/<pack ID>`,
/// `index/<ID>`, `snapshots/<ID>` and `locks/<ID>`. The repository code uses nothing else, so
/// a peer target (a paired device storing the files in its data directory) plugs in by
/// implementing these calls over the agents' transport.
public protocol BackupTarget: Sendable {
    /// A short text for messages, such as `local:/mnt/usb/hubsync`.
    var description: String { get }
    /// Stores a file atomically: after a crash the name holds either nothing or all of `data`.
    /// Replaces an existing file only when `replacing` is true (only leases do).
    func put(_ name: String, _ data: [UInt8], replacing: Bool) throws(BackupError)
    /// The whole file; `.notFound` when it does not exist.
    func get(_ name: String) throws(BackupError) -> [UInt8]
    /// `length` bytes from `offset` of a file.
    func get(_ name: String, offset: Int, length: Int) throws(BackupError) -> [UInt8]
    /// The names of the files under a folder (`data` lists its sub-folders' files too), with sizes.
    func list(_ folder: String) throws(BackupError) -> [(name: String, size: Int)]
    /// Removes a file; removing a missing file is not an error.
    func delete(_ name: String) throws(BackupError)
    /// Whether a file exists.
    func exists(_ name: String) throws(BackupError) -> Bool
    /// Removes several files, in order, as one step where the target can (a peer signs one
    /// prune plan for them).
    func remove(_ names: [String]) throws(BackupError)
}

extension BackupTarget {
    public func remove(_ names: [String]) throws(BackupError) {
        for name in names { try delete(name) }
    }
}

/// Parses a `--repo` value: `local:PATH` (or a plain absolute path);
/// `s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX]` with `s3` settings; `peer:DEVICE-ID` goes to
/// `peer`, which knows this device's identity and the peer's address.
public func makeTarget(_ text: String, s3: S3Settings = S3Settings(environment: ProcessInfo.processInfo.environment),
                       peer: (String) throws(BackupError) -> any BackupTarget = { text throws(BackupError) in
                           throw BackupError(.invalidInput, "peer targets (\(text)) need a device: pass --data DIR")
                       }) throws(BackupError) -> any BackupTarget {
    if text.hasPrefix("local:") || text.hasPrefix("/") {
        let path = text.hasPrefix("local:") ? String(text.dropFirst(6)) : text
        guard path.hasPrefix("/") else {
            throw BackupError(.invalidInput, "\(text): a local repository is an absolute path, such as local:/media/usb/hubsync")
        }
        if let problem = FolderPlacement.problem(path, what: "a backup repository") { throw BackupError(.invalidInput, problem) }
        return LocalTarget(path: path)
    }
    if text.hasPrefix("s3:") { return try S3Target(String(text.dropFirst(3)), settings: s3) }
    if text.hasPrefix("peer:") { return try peer(String(text.dropFirst(5))) }
    throw BackupError(.invalidInput, "unknown repository \"\(text)\"; give local:PATH (e.g. --repo "
        + "local:/mnt/usb/hubsync), s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX] (an S3 bucket) or peer:DEVICE-ID "
        + "(a paired device that stores backups)")
}
