import Foundation
import HubSyncBase

/// The `household.key` text format: the line `hubsync-household-v1`, then `group_id HEX`,
/// `group_key HEX`, `epoch N` and `recovery_public_key HEX`, each line ending in "\n".
extension Household {
    static let header = "hubsync-household-v1"

    /// The file contents, in zeroed-on-release memory (they hold the group key).
    func encoded() -> SecureBytes {
        let head = Array("\(Self.header)\ngroup_id \(groupIDHex)\ngroup_key ".utf8)
        let tail = Array("\nepoch \(epoch)\nrecovery_public_key \(Hex.encode(recoveryPublicKey))\n".utf8)
        let digits = Array("0123456789abcdef".utf8)
        return groupKey.withUnsafeBytes { key in
            SecureBytes(uninitializedCount: head.count + key.count * 2 + tail.count) { out in
                var i = 0
                for b in head { out[i] = b; i += 1 }
                for b in key {
                    out[i] = digits[Int(b >> 4)]; out[i + 1] = digits[Int(b & 15)]; i += 2
                }
                for b in tail { out[i] = b; i += 1 }
            }
        }
    }

    /// Loads the household secrets in `directory`; refuses a file others may read.
    public static func load(from directory: URL) throws(HouseholdError) -> Household {
        let path = fileURL(in: directory).path
        var status = stat()
        guard lstat(path, &status) == 0 else {
            throw HouseholdError(.missing, "no household secrets in \(directory.path) (\(fileName) is missing): this data "
                + "directory was made before backups existed; run `hubsync init --household --data \(directory.path)` "
                + "to create them (it prints the household's recovery key)")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw HouseholdError(.malformed, "\(path) is not a regular file; move it away")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw HouseholdError(.insecurePermissions, "\(path) is accessible by others; run `chmod 600 \(path)`")
        }
        guard let data = FileManager.default.contents(atPath: path), data.count < 4096 else {
            throw HouseholdError(.io, "cannot read \(path)")
        }
        var bytes = [UInt8](data)
        defer { for i in bytes.indices { bytes[i] = 0 } }
        var fields: [String: ArraySlice<UInt8>] = [:]
        let lines = bytes.split(separator: UInt8(ascii: "\n"))
        guard let first = lines.first, first.elementsEqual(header.utf8) else {
            throw HouseholdError(.malformed, "\(path) is not a hubsync household file (its first line should be "
                + "`\(header)`); restore it from a backup or another device")
        }
        for line in lines.dropFirst() {
            guard let space = line.firstIndex(of: UInt8(ascii: " ")) else { continue }
            fields[String(decoding: line[line.startIndex..<space], as: UTF8.self)] = line[(space + 1)...]
        }
        func hex(_ name: String, _ count: Int) throws(HouseholdError) -> [UInt8] {
            guard let text = fields[name], let v = Hex.decode(String(decoding: text, as: UTF8.self)), v.count == count else {
                throw HouseholdError(.malformed, "\(path): \(name) is missing or damaged (\(count * 2) hex characters "
                    + "expected); restore the file from a backup or another device")
            }
            return v
        }
        // 16 bytes as made here; 32 when the ID comes from a household formed by pairing.
        let groupID: [UInt8]
        if let long = try? hex("group_id", 32) { groupID = long } else { groupID = try hex("group_id", groupIDByteCount) }
        var keyBytes = try hex("group_key", 32)
        defer { for i in keyBytes.indices { keyBytes[i] = 0 } }
        let recovery = try hex("recovery_public_key", 32)
        guard let e = fields["epoch"], let epoch = UInt32(String(decoding: e, as: UTF8.self)), epoch > 0 else {
            throw HouseholdError(.malformed, "\(path): epoch is missing or not a positive number")
        }
        return Household(groupID: groupID, groupKey: SymmetricKey(copying: keyBytes), epoch: epoch,
                         recoveryPublicKey: recovery)
    }

    /// Writes the file through a synced temporary file: linked into place when `replacing` is
    /// false (never overwrites), renamed over the old one otherwise.
    func write(in directory: URL, replacing: Bool) throws(HouseholdError) {
        let dir = directory.path
        let path = Self.fileURL(in: directory).path
        if !replacing, Self.exists(in: directory) {
            throw HouseholdError(.exists, "\(path) already exists; household secrets are never overwritten")
        }
        let temporary = dir + "/.\(Self.fileName).tmp-" + String(UInt64.random(in: .min ... .max), radix: 16)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HouseholdError(.io, "cannot write \(temporary): \(Errno.message(errno))") }
        defer { unlink(temporary) }
        let ok = encoded().withUnsafeBytes { raw -> Bool in
            guard fchmod(fd, 0o600) == 0 else { return false }
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 { if errno == EINTR { continue }; return false }
                done += n
            }
            return fsync(fd) == 0
        }
        let reason = Errno.message(errno)
        close(fd)
        guard ok else { throw HouseholdError(.io, "cannot write \(temporary): \(reason)") }
        if replacing {
            guard rename(temporary, path) == 0 else {
                throw HouseholdError(.io, "cannot replace \(path): \(Errno.message(errno))")
            }
        } else if link(temporary, path) != 0 {
            if errno == EEXIST { throw HouseholdError(.exists, "\(path) already exists; household secrets are never overwritten") }
            throw HouseholdError(.io, "cannot create \(path): \(Errno.message(errno))")
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }
}
