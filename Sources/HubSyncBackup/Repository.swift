import Foundation
import HubSyncBase
public import HubSyncCrypto
import HubSyncCore

/// An encrypted, deduplicated snapshot repository on a ``BackupTarget`` (protocol/SPEC.md 5).
///
/// Open it with the household's group key (any member device) or with the recovery key (a bare
/// machine); either unwraps the same repository key from `keys/`.
public final class Repository {
    public let target: any BackupTarget
    /// The repository's random ID (16 bytes, hex).
    public let id: String
    let chunker: Chunker.Parameters
    let packSize: Int
    let key: RepositoryKey

    init(target: any BackupTarget, id: String, chunker: Chunker.Parameters, packSize: Int, key: RepositoryKey) {
        self.target = target
        self.id = id
        self.chunker = chunker
        self.packSize = packSize
        self.key = key
    }

    public static let version = 1
    public static let defaultPackSize = 4 << 20

    /// Whether a repository exists at the target (its `config` file does).
    public static func exists(at target: any BackupTarget) throws(BackupError) -> Bool {
        try target.exists("config")
    }

    /// Creates a repository: a new repository key wrapped under the household's group key and
    /// sealed to its recovery public key; `config` is written last, so a crash leaves no
    /// half-made repository that looks real.
    @discardableResult
    public static func create(at target: any BackupTarget, household: HouseholdSecrets,
                              packSize: Int = defaultPackSize) throws(BackupError) -> Repository {
        guard try !exists(at: target) else {
            throw BackupError(.exists, "a repository already exists at \(target.description); back up into it with "
                + "`hubsync backup now --repo \(target.description)`")
        }
        let idBytes = Blake2b.hash(Array(UUID().uuidString.utf8) + Array(String(UInt64.random(in: .min ... .max)).utf8),
                                   outputLength: 16)
        let repoID = hexEncode(idBytes)
        let key = RepositoryKey.generate()
        try KeyFile.writeGroup(key, repoID: repoID, household: household, to: target)
        try KeyFile.writeRecovery(key, recoveryPublicKey: household.recoveryPublicKey, to: target)
        let params = Chunker.Parameters()
        let config: Value = [
            "version": .int(Int64(version)), "id": .string(repoID),
            "chunker": ["min": .int(Int64(params.minimum)), "target": .int(Int64(params.target)),
                        "max": .int(Int64(params.maximum))],
            "pack_size": .int(Int64(packSize)),
            "created": .int(Int64(Date().timeIntervalSince1970 * 1000)),
        ]
        try target.put("config", Array((JSON.serialize(config) + "\n").utf8), replacing: false)
        return Repository(target: target, id: repoID, chunker: params, packSize: packSize, key: key)
    }

    /// Opens a repository with the household's group key, or else the recovery key.
    public static func open(at target: any BackupTarget, household: HouseholdSecrets?,
                            recoveryKey: RecoveryKey?) throws(BackupError) -> Repository {
        let configBytes: [UInt8]
        do {
            configBytes = try target.get("config")
        } catch where error.code == .notFound {
            throw BackupError(.missing, "no backup repository at \(target.description) (it has no config file); "
                + (target is PeerTarget ? "that device stores none for this one yet; " : "check the path (is the disk mounted?) or ")
                + "create one with `hubsync backup init --repo \(target.description)`")
        }
        guard let config = (try? JSON.parse(configBytes))?.objectValue,
              case .int(let version) = config["version"] ?? .null, let repoID = config["id"]?.stringValue,
              let chunker = config["chunker"]?.objectValue,
              case .int(let minimum) = chunker["min"] ?? .null, case .int(let target_) = chunker["target"] ?? .null,
              case .int(let maximum) = chunker["max"] ?? .null, case .int(let packSize) = config["pack_size"] ?? .null,
              minimum > 0, target_ > 0, maximum >= minimum, packSize > 0 else {
            throw BackupError(.damaged, "the config file of \(target.description) is damaged or not a HubSync repository's")
        }
        guard version == Int64(Repository.version) else {
            throw BackupError(.damaged, "\(target.description) is a version \(version) repository; this hubsync reads "
                + "version \(Repository.version): upgrade hubsync")
        }
        let key = try KeyFile.unwrap(repoID: repoID, target: target, household: household, recoveryKey: recoveryKey)
        return Repository(target: target, id: repoID,
                          chunker: Chunker.Parameters(minimum: Int(minimum), target: Int(target_), maximum: Int(maximum)),
                          packSize: Int(packSize), key: key)
    }

    /// The file name of a pack.
    static func packName(_ id: BlobID) -> String { "data/\(id.hex.prefix(2))/\(id.hex)" }
}

/// The `keys/` entries: the repository key wrapped for the group and sealed for recovery.
enum KeyFile {
    static func groupAD(repoID: String, household: HouseholdSecrets) -> [UInt8] {
        var w = ByteWriter()
        w.append(Label.repositoryKey)
        w.append(Array(repoID.utf8))
        w.append(household.groupID)
        w.u32(household.backupEpoch)
        return w.bytes
    }

    static func writeGroup(_ key: RepositoryKey, repoID: String, household: HouseholdSecrets,
                           to target: any BackupTarget) throws(BackupError) {
        let wrapped = key.master.withUnsafeBytes { m in
            Sealed.seal([UInt8](m), key: household.groupKey, ad: groupAD(repoID: repoID, household: household))
        }
        let v: Value = ["version": 1, "kind": "group", "group_id": .string(household.groupIDHex),
                        "epoch": .int(Int64(household.backupEpoch)), "wrapped": .string(hexEncode(wrapped))]
        try target.put("keys/group-\(household.groupIDHex)-\(household.backupEpoch)", Array((JSON.serialize(v) + "\n").utf8),
                       replacing: false)
    }

    static func writeRecovery(_ key: RepositoryKey, recoveryPublicKey: [UInt8],
                              to target: any BackupTarget) throws(BackupError) {
        let sealed = HouseholdSecrets.seal(key.master.withUnsafeBytes { SecureBytes(copying: $0) }, toRecoveryKey: recoveryPublicKey)
        let v: Value = ["version": 1, "kind": "recovery", "recovery_public_key": .string(hexEncode(recoveryPublicKey)),
                        "sealed": .string(hexEncode(sealed))]
        try target.put("keys/recovery-\(hexEncode(recoveryPublicKey.prefix(8)))", Array((JSON.serialize(v) + "\n").utf8),
                       replacing: false)
    }

    static func unwrap(repoID: String, target: any BackupTarget, household: HouseholdSecrets?,
                       recoveryKey: RecoveryKey?) throws(BackupError) -> RepositoryKey {
        var entries: [[String: Value]] = []
        for (name, _) in try target.list("keys") {
            if let o = (try? JSON.parse(try target.get(name)))?.objectValue { entries.append(o) }
        }
        if let recoveryKey {
            let pair = recoveryKey.keyPair
            for e in entries where e["kind"]?.stringValue == "recovery" {
                guard e["recovery_public_key"]?.stringValue == hexEncode(pair.publicKey),
                      let sealed = e["sealed"]?.stringValue.flatMap(hexDecode),
                      let master = pair.open(sealed: sealed), master.count == 32 else { continue }
                return RepositoryKey(SymmetricKey(master))
            }
            throw BackupError(.wrongKey, "the recovery key does not open the repository at \(target.description): it is "
                + "another household's key (its check characters are right, so it was typed correctly); "
                + "find the recovery key printed by `hubsync init` on this household's first device")
        }
        guard let household else {
            throw BackupError(.wrongKey, "no household secrets on this device to open \(target.description); "
                + "pass --recovery-key KEY")
        }
        for e in entries where e["kind"]?.stringValue == "group" && e["group_id"]?.stringValue == household.groupIDHex {
            guard case .int(let epoch) = e["epoch"] ?? .null, epoch == Int64(household.backupEpoch),
                  let wrapped = e["wrapped"]?.stringValue.flatMap(hexDecode),
                  let master = Sealed.open(wrapped[...], key: household.groupKey,
                                           ad: groupAD(repoID: repoID, household: household)),
                  master.count == 32 else { continue }
            return RepositoryKey(SymmetricKey(copying: master))
        }
        throw BackupError(.wrongKey, "the repository at \(target.description) is not this household's (no key entry "
            + "for group \(household.groupIDHex.prefix(8))… epoch \(household.backupEpoch) opens it); use --recovery-key KEY "
            + "if it is yours, or another --repo")
    }
}
