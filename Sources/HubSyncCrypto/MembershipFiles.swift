import Foundation
import HubSyncBase

/// Where a device keeps its household while pairing runs on its own files.
///
/// `pairing-group.key` holds the ``GroupSecrets`` encoding (104 bytes, mode 0600);
/// `membership.statements` holds the known statements, 217 bytes each, in hash order. Both are
/// replaced atomically (write a temporary file, fsync, rename). Saving the secrets also updates
/// `household.key`, which backups use (see ``mirrorIntoHousehold(_:in:)``).
public enum MembershipFiles {
    /// The group secrets file's name.
    public static let secretsFileName = DataDirectory.groupSecretsFile
    /// The statements file's name.
    public static let statementsFileName = DataDirectory.statementsFile

    /// The saved group secrets, or nil when this device has no household yet.
    public static func loadSecrets(in directory: String) throws(PairingError) -> GroupSecrets? {
        let path = directory + "/" + secretsFileName
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            return try GroupSecrets(encoded: SecureBytes(copying: data))
        } catch {
            throw PairingError(code: .io, message: "\(path) is damaged (\(error.message)); "
                + "restore it from a backup or pair this device again")
        }
    }

    /// Saves the group secrets (mode 0600).
    public static func saveSecrets(_ secrets: GroupSecrets, in directory: String) throws(PairingError) {
        let bytes = secrets.encoded().withUnsafeBytes { Array($0) }
        try write(bytes, to: directory + "/" + secretsFileName, mode: 0o600)
        try mirrorIntoHousehold(secrets, in: directory)
    }

    /// The saved statements (empty when there are none).
    public static func loadStatements(in directory: String) throws(PairingError) -> [MembershipStatement] {
        let path = directory + "/" + statementsFileName
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let bytes = [UInt8](data)
        guard bytes.count % MembershipStatement.byteCount == 0 else {
            throw PairingError(code: .io, message: "\(path) has \(bytes.count) bytes, not a whole number of "
                + "statements; restore it from a backup or pair this device again")
        }
        var out: [MembershipStatement] = []
        for start in stride(from: 0, to: bytes.count, by: MembershipStatement.byteCount) {
            out.append(try MembershipStatement(encoded: bytes[start..<(start + MembershipStatement.byteCount)]))
        }
        return out
    }

    /// Saves statements (replacing the file).
    public static func saveStatements(_ statements: [MembershipStatement], in directory: String) throws(PairingError) {
        try write(statements.flatMap { $0.encoded() }, to: directory + "/" + statementsFileName, mode: 0o644)
    }

    /// The household as saved: its secrets and the state of its statements, or nil.
    public static func load(in directory: String) throws(PairingError) -> (GroupSecrets, MembershipState)? {
        guard let secrets = try loadSecrets(in: directory) else { return nil }
        return (secrets, MembershipState(groupID: secrets.groupID, statements: try loadStatements(in: directory)))
    }

    private static func write(_ bytes: [UInt8], to path: String, mode: mode_t) throws(PairingError) {
        do { try DataDirectory.writeAtomically(bytes, toPath: path, mode: mode) } catch {
            throw PairingError(code: .io, message: "cannot write \(path): \(error.reason)")
        }
    }
}
