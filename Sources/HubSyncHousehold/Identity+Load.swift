import HubSyncBase
public import HubSyncCrypto
import Foundation

extension Identity {
    /// Loads the identity in `directory`.
    ///
    /// Refuses, like ssh, a key file that group or others may read or write.
    public static func load(from directory: URL) throws(IdentityError) -> Identity {
        let directoryPath = directory.path
        let path = keyFileURL(in: directory).path
        let descriptor: Int32
        do {
            descriptor = try SystemCallError.check("open", path) { open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY) }
        } catch where error.errno == ENOENT || error.errno == ENOTDIR {
            throw IdentityError(code: .missing,
                                message: "no identity in \(directoryPath); run `hubsync init --data \(directoryPath)` first",
                                cause: error)
        } catch {
            throw IdentityError(code: .io, message: "cannot read identity key \(path): \(error.reason)", cause: error)
        }
        defer { close(descriptor) }

        var status = stat()
        do {
            try SystemCallError.check("fstat", path) { fstat(descriptor, &status) }
        } catch {
            throw IdentityError(code: .io, message: "cannot read identity key \(path): \(error.reason)", cause: error)
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw IdentityError(code: .malformed,
                                message: "identity key \(path) is not a regular file; move it away and restore "
                                    + "the file from a backup")
        }
        let permissions = status.st_mode & 0o7777
        guard permissions & 0o077 == 0 else {
            let mode = String(permissions, radix: 8)
            throw IdentityError(
                code: .insecurePermissions,
                message: "identity key \(path) is accessible by others (mode "
                    + "\(String(repeating: "0", count: max(0, 4 - mode.count)) + mode)); run `chmod 600 \(path)`")
        }

        let contents = try readContents(of: descriptor, path: path)
        switch contents.withUnsafeBytes(IdentityFile.decode) {
        case .success(let signingKey):
            return Identity(signingKey: signingKey)
        case .failure(.unsupportedVersion(let version)):
            throw IdentityError(code: .malformed,
                                message: "identity key \(path) has format \(version), which this version of "
                                    + "hubsync cannot read; upgrade hubsync")
        case .failure(.notAnIdentity):
            throw IdentityError(code: .malformed,
                                message: "identity key \(path) is not a hubsync identity (its first line should "
                                    + "be `\(IdentityFile.header)`); restore it from a backup")
        case .failure(.badSeed):
            throw IdentityError(code: .malformed,
                                message: "identity key \(path) is damaged (its second line should be 64 hex "
                                    + "characters); restore it from a backup")
        }
    }

    /// Reads the whole (small) file into zeroed-on-release memory.
    private static func readContents(of descriptor: Int32, path: String) throws(IdentityError) -> SecureBytes {
        var length = 0
        var failure: SystemCallError?
        let buffer = SecureBytes(uninitializedCount: IdentityFile.maximumSize + 1) { buffer in
            while length < buffer.count {
                let count: Int
                do throws(SystemCallError) {
                    count = try SystemCallError.check("read", path) {
                        read(descriptor, buffer.baseAddress! + length, buffer.count - length)
                    }
                } catch {
                    failure = error
                    return
                }
                if count == 0 { return }
                length += count
            }
        }
        if let failure {
            throw IdentityError(code: .io, message: "cannot read identity key \(path): \(failure.reason)",
                                cause: failure)
        }
        guard length <= IdentityFile.maximumSize else {
            throw IdentityError(code: .malformed,
                                message: "identity key \(path) is larger than \(IdentityFile.maximumSize) bytes, "
                                    + "so it is not a hubsync identity; restore it from a backup")
        }
        return buffer.withUnsafeBytes { SecureBytes(copying: UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
    }
}
