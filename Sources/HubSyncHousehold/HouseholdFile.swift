public import HubSyncBase
public import HubSyncCrypto
import Foundation

/// The household's files in a data directory: `household.key`, the secrets (mode 0600), and
/// `membership.statements`, the signed statements (217 bytes each, in hash order).
///
/// `household.key` is text: the line `hubsync-household-v2`, then `group_id HEX`,
/// `group_key HEX`, `epoch N` (the key epoch, 0 when founded) and `recovery_public_key HEX`
/// (all zero when none is set), then `previous_key EPOCH HEX` for each group key held before
/// (oldest first), each line ending in "\n". Reading never writes: a directory in
/// the layout before one household is read as if migrated; ``Household`` migrates it on disk.
public enum HouseholdFile {
    static let header = "hubsync-household-v2"
    /// Larger files are rejected unread.
    static let maximumSize = 16384

    /// What a data directory holds of its household.
    public struct Contents: Sendable {
        /// The secrets, or nil when the directory has none.
        public var secrets: HouseholdSecrets?
        /// The saved statements (of any group; the fold ignores others).
        public var statements: [MembershipStatement]
        /// Whether the files are in the layout before one household (``Household`` migrates them).
        public var isLegacy: Bool
    }

    /// Reads the household in `directory`, in either layout.
    public static func read(in directory: DataDirectory) throws(HouseholdError) -> Contents {
        let statements = try readStatements(in: directory)
        var legacyPairing = try readPrivateFile(DataDirectory.legacyGroupSecretsFile, in: directory)
        defer { if legacyPairing != nil { zero(&legacyPairing!) } }
        guard var text = try readSecretsFile(in: directory) else {
            guard let legacyPairing else { return Contents(secrets: nil, statements: statements, isLegacy: false) }
            return Contents(secrets: try decodeLegacyPairing(legacyPairing, in: directory, household: nil),
                            statements: statements, isLegacy: true)
        }
        defer { zero(&text) }
        if text.starts(with: Array(header.utf8)) {
            return Contents(secrets: try decode(text, path: directory.file(DataDirectory.householdFile)),
                            statements: statements, isLegacy: legacyPairing != nil)
        }
        let household = try decodeLegacyHousehold(text, path: directory.file(DataDirectory.householdFile))
        guard let legacyPairing else { return Contents(secrets: household, statements: statements, isLegacy: true) }
        return Contents(secrets: try decodeLegacyPairing(legacyPairing, in: directory, household: household),
                        statements: statements, isLegacy: true)
    }

    /// The secrets backups use, which need a recovery public key.
    public static func secretsForBackup(in directory: DataDirectory) throws(HouseholdError) -> HouseholdSecrets {
        try HouseholdSnapshot.read(in: directory).secretsForBackup(in: directory)
    }

    /// The raw `household.key`, or nil when there is none; refuses a file others may read.
    static func readSecretsFile(in directory: DataDirectory) throws(HouseholdError) -> [UInt8]? {
        try readPrivateFile(DataDirectory.householdFile, in: directory)
    }

    /// A file of secrets in the directory, or nil when there is none; refuses one that is not a
    /// regular file or that others may read.
    static func readPrivateFile(_ name: String, in directory: DataDirectory) throws(HouseholdError) -> [UInt8]? {
        let path = directory.file(name)
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw HouseholdError(.malformed, "\(path) is not a regular file; move it away")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw HouseholdError(.insecurePermissions, "\(path) is accessible by others; run `chmod 600 \(path)`")
        }
        guard let bytes = directory.contents(of: name), bytes.count < maximumSize else {
            throw HouseholdError(.io, "cannot read \(path)")
        }
        return bytes
    }

    /// The file's text for `secrets`, in zeroed-on-release memory (it holds the group keys):
    /// after the four fields, one line `previous_key EPOCH HEX` for each earlier key, oldest first.
    static func encode(_ secrets: HouseholdSecrets) -> SecureBytes {
        var parts: [(text: [UInt8], key: SymmetricKey?)] = [
            (Array("\(header)\ngroup_id \(secrets.groupIDHex)\ngroup_key ".utf8), secrets.groupKey),
            (Array("\nepoch \(secrets.epoch)\nrecovery_public_key \(Hex.encode(secrets.recoveryPublicKey))\n".utf8), nil),
        ]
        for held in secrets.previousKeys {
            parts.append((Array("previous_key \(held.epoch) ".utf8), held.key))
            parts.append((Array("\n".utf8), nil))
        }
        let total = parts.reduce(0) { $0 + $1.text.count + ($1.key?.byteCount ?? 0) * 2 }
        let digits = Array("0123456789abcdef".utf8)
        return SecureBytes(uninitializedCount: total) { out in
            var i = 0
            for part in parts {
                for b in part.text { out[i] = b; i += 1 }
                part.key?.withUnsafeBytes { key in
                    for b in key {
                        out[i] = digits[Int(b >> 4)]; out[i + 1] = digits[Int(b & 15)]; i += 2
                    }
                }
            }
        }
    }

    /// The `previous_key EPOCH HEX` lines of the file's text, in order.
    static func previousKeys(of text: [UInt8], path: String) throws(HouseholdError) -> [HouseholdSecrets.HeldGroupKey] {
        var out: [HouseholdSecrets.HeldGroupKey] = []
        for line in text.split(separator: UInt8(ascii: "\n")) where line.starts(with: Array("previous_key ".utf8)) {
            let words = line.split(separator: UInt8(ascii: " "))
            guard words.count == 3, let epoch = UInt64(String(decoding: words[1], as: UTF8.self)),
                  var key = Hex.decode(String(decoding: words[2], as: UTF8.self)), key.count == 32 else {
                throw HouseholdError(.malformed, "\(path): a previous_key line is damaged (`previous_key EPOCH HEX` "
                    + "expected); restore the file from a backup or another device")
            }
            out.append(HouseholdSecrets.HeldGroupKey(epoch: epoch, key: SymmetricKey(copying: key)))
            zero(&key)
        }
        return out
    }

    /// Decodes the file's text (version 2).
    static func decode(_ text: [UInt8], path: String) throws(HouseholdError) -> HouseholdSecrets {
        let fields = try fields(of: text, header: header, path: path)
        guard let e = fields["epoch"], let epoch = UInt64(String(decoding: e, as: UTF8.self)) else {
            throw HouseholdError(.malformed, "\(path): epoch is missing or not a number")
        }
        var secrets = try secrets(fields, epoch: epoch, path: path)
        secrets.previousKeys = try previousKeys(of: text, path: path)
        return secrets
    }

    /// The `name value` lines after `header`.
    static func fields(of text: [UInt8], header: String, path: String) throws(HouseholdError) -> [String: ArraySlice<UInt8>] {
        let lines = text.split(separator: UInt8(ascii: "\n"))
        guard let first = lines.first, first.elementsEqual(header.utf8) else {
            throw HouseholdError(.malformed, "\(path) is not a hubsync household file (its first line should be "
                + "`\(header)`); restore it from a backup or another device")
        }
        var fields: [String: ArraySlice<UInt8>] = [:]
        for line in lines.dropFirst() {
            guard let space = line.firstIndex(of: UInt8(ascii: " ")) else { continue }
            fields[String(decoding: line[line.startIndex..<space], as: UTF8.self)] = line[(space + 1)...]
        }
        return fields
    }

    /// The secrets named by `fields` (group ID of 32 bytes, or 16 from a household made before
    /// membership existed).
    static func secrets(_ fields: [String: ArraySlice<UInt8>], epoch: UInt64, path: String) throws(HouseholdError) -> HouseholdSecrets {
        func hex(_ name: String, _ counts: [Int]) throws(HouseholdError) -> [UInt8] {
            guard let text = fields[name], let v = Hex.decode(String(decoding: text, as: UTF8.self)), counts.contains(v.count) else {
                throw HouseholdError(.malformed, "\(path): \(name) is missing or damaged (\(counts[0] * 2) hex characters "
                    + "expected); restore the file from a backup or another device")
            }
            return v
        }
        let groupID = try hex("group_id", [HouseholdSecrets.groupIDByteCount, HouseholdSecrets.legacyGroupIDByteCount])
        var keyBytes = try hex("group_key", [32])
        defer { zero(&keyBytes) }
        let recovery = try hex("recovery_public_key", [32])
        return HouseholdSecrets(groupID: groupID, groupKey: SymmetricKey(copying: keyBytes), epoch: epoch,
                                recoveryPublicKey: recovery)
    }

    /// Saves `secrets` (mode 0600): replacing the file, or only when there is none.
    public static func writeSecrets(_ secrets: HouseholdSecrets, in directory: DataDirectory,
                                    replacing: Bool) throws(HouseholdError) {
        let path = directory.file(DataDirectory.householdFile)
        let written: Bool
        do {
            written = try encode(secrets).withUnsafeBytes { bytes in
                Result { () throws(SystemCallError) in
                    try DataDirectory.writeAtomically(bytes, toPath: path, mode: 0o600, replacing: replacing)
                }
            }.get()
        } catch {
            throw HouseholdError(.io, "cannot write \(path): \(error.reason)", cause: error)
        }
        guard written else {
            throw HouseholdError(.exists, "\(path) already exists; household secrets are never overwritten")
        }
    }

    /// The saved statements (empty when there are none).
    static func readStatements(in directory: DataDirectory) throws(HouseholdError) -> [MembershipStatement] {
        guard let bytes = directory.contents(of: DataDirectory.statementsFile) else { return [] }
        let path = directory.file(DataDirectory.statementsFile)
        guard bytes.count % MembershipStatement.byteCount == 0 else {
            throw HouseholdError(.damaged, "\(path) has \(bytes.count) bytes, not a whole number of "
                + "statements; restore it from a backup or pair this device again")
        }
        var out: [MembershipStatement] = []
        for start in stride(from: 0, to: bytes.count, by: MembershipStatement.byteCount) {
            do {
                out.append(try MembershipStatement(encoded: bytes[start..<(start + MembershipStatement.byteCount)]))
            } catch {
                throw HouseholdError(.damaged, "\(path) is damaged (\(error.message)); restore it from a backup or "
                    + "pair this device again", cause: error)
            }
        }
        return out
    }

    /// Saves the statements (replacing the file; they are public, mode 0644).
    static func writeStatements(_ statements: [MembershipStatement], in directory: DataDirectory) throws(HouseholdError) {
        do {
            try directory.writeAtomically(statements.flatMap { $0.encoded() }, to: DataDirectory.statementsFile, mode: 0o600)
        } catch {
            throw HouseholdError(.io, "cannot write \(directory.file(DataDirectory.statementsFile)): \(error.reason)", cause: error)
        }
    }

    /// Overwrites secret bytes read from a file once they are decoded.
    static func zero(_ bytes: inout [UInt8]) {
        for i in bytes.indices { bytes[i] = 0 }
    }
}
