import Foundation
import HubSyncBase
import HubSyncCrypto
import HubSyncHousehold
import HubSyncTestSupport

/// A data directory of its own for one test, with a device identity that is not saved in it
/// (the household needs only the key).
struct TestDevice {
    let temporary = TemporaryDirectory(prefix: "hubsync-household")
    let identity = Identity(signingKey: .generate())
    var directory: DataDirectory { DataDirectory(path: temporary.path) }

    /// Opens the directory's household, as its one writer.
    func open() throws -> Household { try Household(directory: directory, identity: identity) }

    /// A household founded on this device, with a recovery key.
    func founded() async throws -> Household {
        let household = try open()
        _ = try await household.addRecoveryKey(time: 1)
        return household
    }

    /// The file's permission bits.
    func mode(of name: String) -> mode_t {
        var status = stat()
        stat(directory.file(name), &status)
        return status.st_mode & 0o777
    }

    /// Whether the directory holds `name`.
    func has(_ name: String) -> Bool { FileManager.default.fileExists(atPath: directory.file(name)) }
}

extension SymmetricKey {
    /// The key's bytes as hex, for writing files in old layouts.
    var hex: String { withUnsafeBytes { Hex.encode(Array($0)) } }
}
