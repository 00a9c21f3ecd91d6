#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// The exclusive lock that makes one process the store's only writer: an `flock(2)` on the data
/// directory itself.
///
/// The kernel releases it when the holder exits, however it exits (`kill -9` included), so a
/// crashed agent never leaves the directory locked; and as it is the directory that is locked,
/// there is no lock file to delete, replace or link elsewhere. Who holds it comes from the
/// kernel too (`/proc/locks`); the holder also writes `DATA/writer.lock` (`PID ROLE`), a hint
/// that only says what the holding process is doing, believed only when its PID is the kernel's.
public final class WriterLock: Sendable {
    /// Who holds a lock.
    public struct Holder: Sendable, Equatable, CustomStringConvertible {
        /// The holding process, as the kernel reports it.
        public let pid: Int32
        /// "agent" for `hubsync run`; a command's name; nil when the holder did not say.
        public let role: String?
        public var isAgent: Bool { role == WriterLock.agentRole }
        public var description: String {
            switch role {
            case WriterLock.agentRole?: "the agent (pid \(pid))"
            case let role?: "`hubsync \(role)` (pid \(pid))"
            case nil: "process \(pid)"
            }
        }
    }

    /// The role an agent writes into the hint file.
    public static let agentRole = "agent"

    /// The open directory; -1 once released.
    private let descriptor: Mutex<Int32>
    public let directory: DataDirectory

    private init(descriptor: Int32, directory: DataDirectory) {
        self.descriptor = Mutex(descriptor)
        self.directory = directory
    }

    deinit { release() }

    /// Lets go of the lock (closing the directory releases it); later calls do nothing.
    public func release() {
        descriptor.withLock { fd in
            guard fd >= 0 else { return }
            close(fd)
            fd = -1
        }
    }

    /// Takes the lock if no other process holds it; nil when one does.
    ///
    /// - Parameter role: written into the hint file for others to read ("agent", or the command).
    public static func acquire(in directory: DataDirectory, role: String) throws(SystemCallError) -> WriterLock? {
        let path = directory.path
        let fd = try SystemCallError.check("open", path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            close(fd)
            if code == EWOULDBLOCK { return nil }
            throw SystemCallError(call: "flock", path: path, errno: code)
        }
        // Only a hint, so a failure to write it changes nothing.
        try? directory.writeAtomically(Array("\(getpid()) \(role)\n".utf8), to: DataDirectory.lockFile, mode: 0o600)
        return WriterLock(descriptor: fd, directory: directory)
    }

    /// Who holds the lock, or nil when nobody does.
    public static func holder(in directory: DataDirectory) -> Holder? {
        var hinted: (pid: Int32, role: String)?
        if let bytes = directory.contents(of: DataDirectory.lockFile) {
            let parts = String(decoding: bytes.prefix(256), as: UTF8.self).split(whereSeparator: \.isWhitespace)
            if parts.count == 2, let pid = Int32(parts[0]) { hinted = (pid, String(parts[1])) }
        }
        if let pid = kernelHolder(of: directory.path) {
            return Holder(pid: pid, role: hinted?.pid == pid ? hinted?.role : nil)
        }
        // The kernel's table names no holder: nobody holds it, or the table cannot be matched to
        // this directory (a file system whose device and inode numbers differ there). Ask the lock
        // itself, and then believe the hint if its process is alive.
        guard probe(directory.path) else { return nil }
        if let hinted, kill(hinted.pid, 0) == 0 { return Holder(pid: hinted.pid, role: hinted.role) }
        return Holder(pid: -1, role: nil)
    }

    /// The PID of the process holding an exclusive flock on `path`, from the kernel's table of
    /// locks (`/proc/locks`): matched by inode, and by device too when several match.
    static func kernelHolder(of path: String) -> Int32? {
        var status = stat()
        guard stat(path, &status) == 0, let table = try? WholeFile.read("/proc/locks") else { return nil }
        let dev = UInt64(status.st_dev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
        let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
        let inode = UInt64(status.st_ino)
        var byInode: [(pid: Int32, sameDevice: Bool)] = []
        // "1: FLOCK  ADVISORY  WRITE 1397 00:2c:1183 0 EOF"; a blocked waiter's line has "->".
        for line in String(decoding: table, as: UTF8.self).split(separator: "\n") where !line.contains("->") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 6, f[1] == "FLOCK", f[3] == "WRITE", let pid = Int32(f[4]) else { continue }
            let id = f[5].split(separator: ":")
            guard id.count == 3, UInt64(id[2]) == inode else { continue }
            byInode.append((pid, UInt64(id[0], radix: 16) == major && UInt64(id[1], radix: 16) == minor))
        }
        return byInode.first(where: \.sameDevice)?.pid ?? (byInode.count == 1 ? byInode[0].pid : nil)
    }

    /// Whether the lock is held, by trying a shared lock. (An exclusive lock taken at that very
    /// moment fails; every caller of ``acquire(in:role:)`` tries again.)
    private static func probe(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return errno == EWOULDBLOCK
    }
}
