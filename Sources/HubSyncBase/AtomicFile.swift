#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file that appears under its name only when complete.
///
/// The bytes go to a fresh temporary file beside the target (`.tmp-NAME-RANDOM`, created with
/// `O_EXCL` and the final mode); ``commit(replacing:)`` syncs it, gives it its name and syncs the
/// folder, so a crash at any point leaves either the old file or the new one, never a mix. A file
/// that is dropped without a commit is removed. Every atomic write in HubSync goes through here.
public final class AtomicFile {
    /// Where the file appears on commit.
    public let path: String
    /// Where the bytes are written until then.
    public let temporaryPath: String
    private var descriptor: Int32
    private var committed = false

    /// Creates the temporary file beside `path`.
    public init(path: String, mode: mode_t = 0o600) throws(SystemCallError) {
        self.path = path
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        temporaryPath = folder + ".tmp-" + String(name.prefix(64)) + "-" + String(UInt64.random(in: .min ... .max), radix: 16)
        let temporary = temporaryPath
        descriptor = try SystemCallError.check("open", temporary) {
            open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        }
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
        if !committed { unlink(temporaryPath) }
    }

    /// Appends `bytes` (all of them, retrying short writes and EINTR).
    public func write(_ bytes: UnsafeRawBufferPointer) throws(SystemCallError) {
        precondition(descriptor >= 0, "AtomicFile written after sync")
        var written = 0
        while written < bytes.count {
            written += try SystemCallError.check("write", temporaryPath) {
                Glibc.write(descriptor, bytes.baseAddress! + written, bytes.count - written)
            }
        }
    }

    /// Appends `bytes`.
    public func write(_ bytes: [UInt8]) throws(SystemCallError) {
        let result: Result<Void, SystemCallError> = bytes.withUnsafeBytes { raw in
            do throws(SystemCallError) { try write(raw); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
    }

    /// Flushes the bytes to the disk and closes the temporary file; after this it can be read back
    /// at ``temporaryPath`` (to verify it) before the commit.
    public func sync() throws(SystemCallError) {
        guard descriptor >= 0 else { return }
        let fd = descriptor
        descriptor = -1
        defer { close(fd) }
        try SystemCallError.check("fsync", temporaryPath) { fsync(fd) }
    }

    /// Gives the file its name and syncs the folder.
    ///
    /// With `replacing` false an existing file is left alone and the result is false: link(2)
    /// never replaces; on file systems without hard links it falls back to rename(2) after a last
    /// check. Returns true when the new file is in place.
    @discardableResult
    public func commit(replacing: Bool = true) throws(SystemCallError) -> Bool {
        try sync()
        if replacing {
            try SystemCallError.check("rename", path) { rename(temporaryPath, path) }
        } else if link(temporaryPath, path) == 0 {
            unlink(temporaryPath)
        } else {
            let code = errno
            switch code {
            case EEXIST:
                return false
            case EPERM, EOPNOTSUPP, EMLINK:
                if access(path, F_OK) == 0 { return false }
                try SystemCallError.check("rename", path) { rename(temporaryPath, path) }
            default:
                throw SystemCallError(call: "link", path: path, errno: code)
            }
        }
        committed = true
        try Self.syncFolder(of: path)
        return true
    }

    /// Syncs the folder that holds `path`, so a new name in it survives a crash (file systems
    /// that cannot sync a folder are let be).
    public static func syncFolder(of path: String) throws(SystemCallError) {
        let folder = path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let fd = try SystemCallError.check("open", folder) { open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(fd) }
        do {
            try SystemCallError.check("fsync", folder) { fsync(fd) }
        } catch where error.errno == EINVAL || error.errno == EOPNOTSUPP {
            return
        }
    }
}
