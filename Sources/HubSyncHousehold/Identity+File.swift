import HubSyncBase
public import HubSyncCrypto
import Foundation

extension Identity {
    /// Name of the key file inside the data directory.
    public static let fileName = DataDirectory.identityFile

    /// The key file's location in `directory`.
    public static func keyFileURL(in directory: URL) -> URL {
        directory.appendingPathComponent(fileName, isDirectory: false)
    }

    /// Whether `directory` holds an identity key file (or anything else by that name).
    public static func exists(in directory: URL) -> Bool {
        var status = stat()
        return lstat(keyFileURL(in: directory).path, &status) == 0
    }

    /// Creates a new identity in `directory` and saves it, creating the directory (mode 0700).
    ///
    /// The key file appears atomically with mode 0600 (``DataDirectory/writeAtomically(_:toPath:mode:replacing:)``
    /// without replacing), so an existing identity is never overwritten: that is refused.
    public static func create(in directory: URL) throws(IdentityError) -> Identity {
        let directoryPath = directory.path
        let path = keyFileURL(in: directory).path
        do {
            try makeDirectories(directoryPath)
            try keepPrivate(directoryPath)
        } catch {
            throw IdentityError(code: .io,
                                message: "cannot create data directory \(directoryPath): \(error.description)",
                                cause: error)
        }
        guard !exists(in: directory) else { throw existsError(directory: directory) }
        let identity = Identity(signingKey: .generate())
        let written: Bool
        do {
            written = try IdentityFile.encode(identity.signingKey).withUnsafeBytes { bytes in
                Result { () throws(SystemCallError) in
                    try DataDirectory.writeAtomically(bytes, toPath: path, mode: 0o600, replacing: false)
                }
            }.get()
        } catch {
            throw IdentityError(code: .io, message: "cannot save identity key \(path): \(error.description)", cause: error)
        }
        guard written else { throw existsError(directory: directory) }
        return identity
    }

    /// The refusal to overwrite, naming the existing device when its file can be read.
    private static func existsError(directory: URL) -> IdentityError {
        let device = (try? load(from: directory)).map { "device \($0.deviceID.short)" }
            ?? "file \(keyFileURL(in: directory).path)"
        return IdentityError(code: .exists,
                             message: "this data directory (\(directory.path)) already has an identity "
                                + "(\(device)); use another --data directory or remove it yourself if you "
                                + "really mean to")
    }

    /// Gives an existing data directory of this user's mode 0700: the store and every file in it
    /// hold the person's data, and SQLite creates them readable by all (the umask decides).
    private static func keepPrivate(_ path: String) throws(SystemCallError) {
        var status = stat()
        try SystemCallError.check("stat", path) { stat(path, &status) }
        guard status.st_uid == geteuid(), status.st_mode & 0o077 != 0 else { return }
        try SystemCallError.check("chmod", path) { chmod(path, 0o700) }
    }

    /// Creates `path` and its missing parents; a directory this creates gets mode 0700.
    private static func makeDirectories(_ path: String) throws(SystemCallError) {
        if mkdir(path, 0o700) == 0 {
            try SystemCallError.check("chmod", path) { chmod(path, 0o700) }
            return
        }
        switch errno {
        case EEXIST:
            var status = stat()
            try SystemCallError.check("stat", path) { stat(path, &status) }
            guard status.st_mode & S_IFMT == S_IFDIR else {
                throw SystemCallError(call: "mkdir", path: path, errno: ENOTDIR)
            }
        case ENOENT:
            let parent = (path as NSString).deletingLastPathComponent
            guard !parent.isEmpty, parent != path else { throw SystemCallError(call: "mkdir", path: path, errno: ENOENT) }
            try makeDirectories(parent)
            try SystemCallError.check("mkdir", path) { mkdir(path, 0o700) }
            try SystemCallError.check("chmod", path) { chmod(path, 0o700) }
        default:
            throw SystemCallError(call: "mkdir", path: path, errno: errno)
        }
    }
}
