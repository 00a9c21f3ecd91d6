public import HubSyncBase
import Foundation
import HubSyncBase

extension Identity {
    /// Creates a new identity in `directory` and saves it, creating the directory (mode 0700).
    ///
    /// The key file appears atomically with mode 0600: it is written to a fresh temporary file,
    /// synced, then linked into place, which fails rather than replace an existing file.
    /// Refuses if the directory already has an identity: an identity is never overwritten.
    public static func create(in directory: URL) throws(IdentityError) -> Identity {
        let directoryPath = directory.path
        let path = keyFileURL(in: directory).path
        do {
            try makeDirectories(directoryPath)
        } catch {
            throw IdentityError(code: .io,
                                message: "cannot create data directory \(directoryPath): \(error.description)",
                                cause: error)
        }
        guard !exists(in: directory) else { throw existsError(directory: directory) }

        let identity = Identity(signingKey: .generate())
        let contents = IdentityFile.encode(identity.signingKey)
        let temporaryPath = directoryPath + "/.\(fileName).tmp-" + String(UInt64.random(in: .min ... .max), radix: 16)
        do {
            try writeNewFile(temporaryPath, contents: contents)
            defer { unlink(temporaryPath) }
            guard try publish(temporaryPath, as: path) else { throw existsError(directory: directory) }
            try syncDirectory(directoryPath)
        } catch let error as SystemCallError {
            throw IdentityError(code: .io, message: "cannot save identity key \(path): \(error.description)",
                                cause: error)
        } catch let error as IdentityError {
            throw error
        } catch {
            throw IdentityError(code: .io, message: "cannot save identity key \(path): \(error)", cause: error)
        }
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

    /// Writes `contents` to a file that must not exist yet, with mode 0600, and syncs it.
    private static func writeNewFile(_ path: String, contents: SecureBytes) throws(SystemCallError) {
        let descriptor = try SystemCallError.check("open", path) {
            open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        }
        var closed = false
        defer { if !closed { close(descriptor) } }
        do throws(SystemCallError) {
            // The umask may only have removed bits; set exactly 0600.
            try SystemCallError.check("fchmod", path) { fchmod(descriptor, 0o600) }
            try contents.withUnsafeBytes { bytes in
                Result { () throws(SystemCallError) in try writeAll(bytes, to: descriptor, path: path) }
            }.get()
            try SystemCallError.check("fsync", path) { fsync(descriptor) }
            closed = true
            try SystemCallError.check("close", path) { close(descriptor) }
        } catch {
            unlink(path)
            throw error
        }
    }

    /// Writes all of `bytes`, continuing after short writes.
    private static func writeAll(
        _ bytes: UnsafeRawBufferPointer, to descriptor: Int32, path: String
    ) throws(SystemCallError) {
        var written = 0
        while written < bytes.count {
            written += try SystemCallError.check("write", path) {
                write(descriptor, bytes.baseAddress! + written, bytes.count - written)
            }
        }
    }

    /// Gives the synced temporary file its final name, unless that name is taken.
    ///
    /// Returns false if `path` exists. Uses link(2), which never replaces; on file systems without
    /// hard links it falls back to rename(2) after a last check.
    private static func publish(_ temporaryPath: String, as path: String) throws(SystemCallError) -> Bool {
        if link(temporaryPath, path) == 0 { return true }
        switch errno {
        case EEXIST:
            return false
        case EPERM, EOPNOTSUPP, EMLINK:
            var status = stat()
            guard lstat(path, &status) != 0, errno == ENOENT else { return false }
            try SystemCallError.check("rename", path) { rename(temporaryPath, path) }
            return true
        default:
            throw SystemCallError(call: "link", path: path, errno: errno)
        }
    }

    /// Syncs the directory so the new name survives a crash.
    private static func syncDirectory(_ path: String) throws(SystemCallError) {
        let descriptor = try SystemCallError.check("open", path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(descriptor) }
        do {
            try SystemCallError.check("fsync", path) { fsync(descriptor) }
        } catch where error.errno == EINVAL || error.errno == EOPNOTSUPP {
            // Some file systems cannot sync a directory; the data itself is already synced.
        }
    }
}
