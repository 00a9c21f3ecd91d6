#if canImport(Glibc)
import Glibc
#endif

/// The exclusive lock on `DATA/writer.lock` that makes one process the store's only writer.
///
/// It is an `flock(2)` lock: the kernel releases it when the holder exits, however it exits
/// (`kill -9` included), so a crashed agent never leaves the directory locked. The file also
/// names the holder (`PID ROLE`) so that others can say who holds it; that text is only a hint,
/// the lock itself is the truth.
public final class WriterLock: Sendable {
    /// Who holds a lock, as the holder wrote it.
    public struct Holder: Sendable, Equatable, CustomStringConvertible {
        public let pid: Int32
        /// "agent" for `hubsync run`; a command's name otherwise.
        public let role: String
        public var isAgent: Bool { role == WriterLock.agentRole }
        public var description: String { isAgent ? "the agent (pid \(pid))" : "`hubsync \(role)` (pid \(pid))" }
    }

    /// The role an agent writes into the lock file.
    public static let agentRole = "agent"

    private let descriptor: Int32
    public let directory: DataDirectory

    private init(descriptor: Int32, directory: DataDirectory) {
        self.descriptor = descriptor
        self.directory = directory
    }

    deinit { close(descriptor) }

    /// Takes the lock if no other process holds it; nil when one does.
    ///
    /// - Parameter role: written into the file for others to read ("agent", or the command).
    public static func acquire(in directory: DataDirectory, role: String) throws(SystemCallError) -> WriterLock? {
        let path = directory.lockPath
        let fd = try SystemCallError.check("open", path) { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            close(fd)
            if code == EWOULDBLOCK { return nil }
            throw SystemCallError(call: "flock", path: path, errno: code)
        }
        let text = Array("\(getpid()) \(role)\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return WriterLock(descriptor: fd, directory: directory)
    }

    /// Whether some process holds the lock now.
    public static func isHeld(in directory: DataDirectory) -> Bool {
        let fd = open(directory.lockPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // A shared lock is refused exactly while someone holds the exclusive one.
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return errno == EWOULDBLOCK
    }

    /// Who holds the lock, or nil when nobody does.
    public static func holder(in directory: DataDirectory) -> Holder? {
        guard isHeld(in: directory), let bytes = directory.contents(of: DataDirectory.lockFile) else { return nil }
        let parts = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isWhitespace)
        guard parts.count >= 2, let pid = Int32(parts[0]) else { return nil }
        return Holder(pid: pid, role: parts[1...].joined(separator: " "))
    }
}
