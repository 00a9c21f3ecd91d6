import Foundation
import HubSyncBase

/// A repository in a local directory: a USB disk, a NAS mount.
///
/// Files are written to a temporary name in the same folder, synced, read back and compared,
/// then renamed into place and the folder synced: a crash leaves either the old state or the
/// whole new file, never a partial one under the final name.
public struct LocalTarget: BackupTarget {
    public let path: String

    public init(path: String) {
        self.path = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    public var description: String { "local:\(path)" }

    func full(_ name: String) -> String { path + "/" + name }

    func failure(_ what: String, _ name: String, _ err: Int32 = errno) -> BackupError {
        let reason = Errno.message(err)
        var hint = ""
        if err == ENOSPC || err == EDQUOT { hint = "; the target disk is full: free space there or run `hubsync backup forget --prune`" }
        else if err == EACCES || err == EPERM { hint = "; check the permissions of \(path)" }
        else if err == EROFS { hint = "; the target is mounted read-only" }
        return BackupError(.io, "cannot \(what) \(full(name)): \(reason)\(hint); nothing already stored was changed")
    }

    public func put(_ name: String, _ data: [UInt8], replacing: Bool) throws(BackupError) {
        let target = full(name)
        let dir = (target as NSString).deletingLastPathComponent
        if mkdir(dir, 0o700) != 0, errno != EEXIST {
            if errno == ENOENT {
                try makeDirectory(dir)
            } else {
                throw failure("create folder for", name)
            }
        }
        if !replacing, access(target, F_OK) == 0 { return } // content-addressed: already there
        let file: AtomicFile
        do throws(SystemCallError) {
            do {
                file = try AtomicFile(path: target)
            } catch where error.errno == ENOENT {
                // A prune emptied and removed the folder since (``delete(_:)``): make it again.
                try? makeDirectory(dir)
                file = try AtomicFile(path: target)
            }
            try file.write(data)
            try file.sync()
        } catch {
            throw failure("write", name, error.errno)
        }
        // Read back what the disk holds before the file becomes visible under its name.
        guard Self.holds(file.temporaryPath, exactly: data) else {
            throw BackupError(.io, "\(full(name)) read back differently from what was written; the target disk "
                + "may be failing; nothing already stored was changed")
        }
        do throws(SystemCallError) {
            // Without `replacing`, a file another process put there meanwhile stays (link(2)).
            try file.commit(replacing: replacing)
        } catch {
            throw failure(error.call == "rename" ? "rename into" : "sync the folder of", name, error.errno)
        }
    }

    /// Whether the file at `path` holds exactly `data`, read back a mebibyte at a time (a whole
    /// second copy of a large index or snapshot file would be held at once otherwise).
    static func holds(_ path: String, exactly data: [UInt8]) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var block = [UInt8](repeating: 0, count: min(max(data.count, 1), 1 << 20))
        var offset = 0
        while true {
            let n = block.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue } else { return false } }
            if n == 0 { return offset == data.count }
            guard offset + n <= data.count, block[..<n].elementsEqual(data[offset..<offset + n]) else { return false }
            offset += n
        }
    }

    private func makeDirectory(_ dir: String) throws(BackupError) {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw BackupError(.io, "cannot create \(dir): \(error.localizedDescription)")
        }
    }

    public func get(_ name: String) throws(BackupError) -> [UInt8] {
        let fd = open(full(name), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw BackupError(.notFound, "\(full(name)) does not exist") }
            throw failure("read", name)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw failure("read", name) }
        return try readAll(fd, offset: 0, length: Int(st.st_size), name: name)
    }

    public func get(_ name: String, offset: Int, length: Int) throws(BackupError) -> [UInt8] {
        let fd = open(full(name), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw BackupError(.notFound, "\(full(name)) does not exist") }
            throw failure("read", name)
        }
        defer { close(fd) }
        return try readAll(fd, offset: offset, length: length, name: name)
    }

    private func readAll(_ fd: Int32, offset: Int, length: Int, name: String) throws(BackupError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        var got = 0
        var err: Int32 = 0
        out.withUnsafeMutableBytes { raw in
            while got < length {
                let n = pread(fd, raw.baseAddress! + got, length - got, off_t(offset + got))
                if n < 0 { if errno == EINTR { continue }; err = errno; return }
                if n == 0 { return }
                got += n
            }
        }
        if err != 0 { throw failure("read", name, err) }
        guard got == length else {
            throw BackupError(.damaged, "\(full(name)) is shorter than expected (\(got) of \(offset + length) bytes)")
        }
        return out
    }

    public func list(_ folder: String) throws(BackupError) -> [(name: String, size: Int)] {
        var out: [(String, Int)] = []
        func walk(_ rel: String) throws(BackupError) {
            let dirPath = full(rel)
            guard let d = opendir(dirPath) else {
                if errno == ENOENT { return }
                throw failure("list", rel)
            }
            defer { closedir(d) }
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name == "." || name == ".." || name.hasPrefix(".tmp-") { continue }
                let child = rel + "/" + name
                var st = stat()
                guard stat(full(child), &st) == 0 else { continue }
                if st.st_mode & S_IFMT == S_IFDIR {
                    try walk(child)
                } else {
                    out.append((child, Int(st.st_size)))
                }
            }
        }
        try walk(folder)
        return out.sorted { $0.0 < $1.0 }
    }

    /// Deletes a file; a pack's fan-out folder (`data/XX/`) left empty goes with it.
    public func delete(_ name: String) throws(BackupError) {
        if unlink(full(name)) != 0, errno != ENOENT { throw failure("delete", name) }
        let parts = name.split(separator: "/")
        if parts.count == 3, parts[0] == "data" {
            rmdir(full(parts[0] + "/" + parts[1])) // fails, harmlessly, while the folder holds a file
        }
    }

    /// Whether the file is there; a failure to look (a folder that cannot be read, a name too
    /// long) is an error, not an answer: a restore would take "not there" for a snapshot pruned.
    public func exists(_ name: String) throws(BackupError) -> Bool {
        if access(full(name), F_OK) == 0 { return true }
        let code = errno
        if code == ENOENT || code == ENOTDIR { return false }
        throw failure("look for", name, code)
    }
}
