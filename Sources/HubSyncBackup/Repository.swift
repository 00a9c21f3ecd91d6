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
    /// The keys; a backup after a rotation adds a data key (``adoptHeldKey(_:)``).
    private(set) var key: RepositoryKey
    /// Whether a key entry opens with the group key this device holds now.
    var holdsCurrentEntry = true
    /// How long a lease this repository takes lasts unless renewed; work renews it as it goes.
    public var leaseDuration: TimeInterval = Lease.defaultDuration
    /// Opened with the recovery key: the household secrets of the signed `keys/household-…`
    /// entries the recovery key opens, highest epoch first. Who signed them is checked against
    /// the membership of the snapshot restored (``RecoveredHousehold/choose(_:statements:)``).
    public internal(set) var recoveredHouseholds: [RecoveredHousehold] = []

    /// The household secrets of the highest epoch among ``recoveredHouseholds`` (not yet checked
    /// against a membership).
    public var recoveredHousehold: HouseholdSecrets? { recoveredHouseholds.first?.secrets }
    /// Whether the repository holds household entries without a signature (version 1, or
    /// planted): a restore names them instead of taking one.
    var hasUnsignedHouseholdEntries: Bool {
        ((try? target.list("keys")) ?? []).contains { name, _ in
            name.hasPrefix("keys/household-") && (try? JSON.parse(try target.get(name)))?.objectValue?["signature"] == nil
        }
    }

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
        try refuseFile(target)
        guard try !exists(at: target) else { throw alreadyExists(target) }
        if let local = target as? LocalTarget {
            // A new repository goes into a new or empty folder (or one a crashed `init` left).
            let other = FolderPlacement.foreignEntries(local.path)
            if !other.isEmpty {
                throw BackupError(.invalidInput, "\(local.path) holds other files (\(other.prefix(3).joined(separator: ", "))"
                    + (other.count > 3 ? ", …" : "") + "); a new backup repository needs a new or empty folder, nothing was written")
            }
        }
        let idBytes = Blake2b.hash(Array(UUID().uuidString.utf8) + Array(String(UInt64.random(in: .min ... .max)).utf8),
                                   outputLength: 16)
        let repoID = hexEncode(idBytes)
        let key = RepositoryKey.generate()
        // Creation holds an exclusive lease: two processes creating a repository in one place at
        // once both see the other's lease and stop, instead of one's key entries meeting the
        // other's config. Under it, key entries without a config are a crashed creation's.
        let lease: Lease
        do throws(BackupError) {
            lease = try Lease(target: target, exclusive: true, holder: "the creation of this repository (pid \(getpid()))",
                              duration: Lease.defaultDuration)
        } catch where error.code == .locked {
            throw BackupError(.locked, "another process is creating a backup repository at \(target.description) at "
                + "this moment, or is using it; nothing was written. Run the command again when it is done")
        }
        defer { lease.release() }
        guard try !exists(at: target) else { throw alreadyExists(target) }
        for (name, _) in (try? target.list("keys")) ?? [] { try? target.delete(name) }
        let group = try KeyFile.writeGroup(key, repoID: repoID, household: household, to: target)
        guard (try? target.get(group.name)) == group.bytes else {
            throw BackupError(.damaged, "\(target.description) holds \(group.name), left by a repository creation that did "
                + "not finish, and it could not be replaced; remove the folder's keys/ entries (the folder has no config, "
                + "so no backup is in it) or use a new folder")
        }
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

    static func alreadyExists(_ target: any BackupTarget) -> BackupError {
        BackupError(.exists, "a repository already exists at \(target.description); back up into it with "
            + "`hubsync backup now --repo \(target.description)`")
    }

    /// A local target whose path is a file, not a folder, is bad input.
    static func refuseFile(_ target: any BackupTarget) throws(BackupError) {
        guard let local = target as? LocalTarget else { return }
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: local.path, isDirectory: &isFolder), !isFolder.boolValue {
            throw BackupError(.invalidInput, "\(local.path) is a file, not a folder; a backup repository is a folder: "
                + "give the path of one (a new or empty folder to create it); nothing was written")
        }
    }

    /// Opens a repository with the household's group key, or else the recovery key.
    public static func open(at target: any BackupTarget, household: HouseholdSecrets?,
                            recoveryKey: RecoveryKey?) throws(BackupError) -> Repository {
        try refuseFile(target)
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
              minimum > 0, target_ > 0, maximum >= minimum, packSize > 0,
              // Bounded before use: the file is whatever someone who can write the repository wrote.
              maximum <= 64 << 20, target_ <= maximum, packSize <= 1 << 30 else {
            throw BackupError(.damaged, "the config file of \(target.description) is damaged or not a HubSync repository's")
        }
        guard version == Int64(Repository.version) else {
            throw BackupError(.damaged, "\(target.description) is a version \(version) repository; this hubsync reads "
                + "version \(Repository.version): upgrade hubsync")
        }
        let (key, held) = try KeyFile.unwrap(repoID: repoID, target: target, household: household, recoveryKey: recoveryKey)
        let repository = Repository(target: target, id: repoID,
                                    chunker: Chunker.Parameters(minimum: Int(minimum), target: Int(target_), maximum: Int(maximum)),
                                    packSize: Int(packSize), key: key)
        repository.holdsCurrentEntry = held
        if let recoveryKey {
            repository.recoveredHouseholds = KeyFile.households(target: target, repoID: repoID, recoveryKey: recoveryKey)
        }
        return repository
    }

    /// Makes sure the group key held now opens this repository: after a rotation (a device was
    /// removed), writes a key entry for it with a fresh data key, which seals what this device
    /// writes from then on; a removed device never held it (protocol/SPEC.md 5.5). When another
    /// member wrote the entry first, its data key is used.
    public func adoptHeldKey(_ household: HouseholdSecrets) throws(BackupError) {
        guard !holdsCurrentEntry else { return }
        try KeyFile.writeEpoch(key, adding: .random(byteCount: 32), repoID: id, household: household, to: target)
        // Read back: two members writing the same entry at once keep the first one written.
        (key, holdsCurrentEntry) = try KeyFile.unwrap(repoID: id, target: target, household: household, recoveryKey: nil)
        guard holdsCurrentEntry else {
            throw BackupError(.io, "the key entry written to \(target.description) for this epoch does not open; "
                + "try the backup again")
        }
    }

    /// Seals the household's secrets to its recovery key in `keys/household-…` (once per group
    /// key), signed by this member, so a machine restored with the recovery key alone rejoins
    /// the household's backups (and adopts no key a stranger planted; protocol/SPEC.md 5.5).
    func recordHousehold(_ household: HouseholdSecrets, signer: SigningKey) throws(BackupError) {
        guard household.hasRecoveryKey, household.groupID.count == HouseholdSecrets.groupIDByteCount else { return }
        let name = "keys/household-\(hexEncode(household.recoveryPublicKey.prefix(8)))-"
            + KeyFile.entryTag(repoID: id, groupKey: household.groupKey)
        guard try !target.exists(name) else { return }
        var current = household
        current.previousKeys = []
        let sealed = HouseholdSecrets.seal(current.encoded(), toRecoveryKey: household.recoveryPublicKey)
        let v: Value = ["version": 2, "kind": "household", "recovery_public_key": .string(hexEncode(household.recoveryPublicKey)),
                        "sealed": .string(hexEncode(sealed)), "signer": .string(hexEncode(signer.publicKey.rawRepresentation)),
                        "signature": .string(hexEncode(signer.signature(for: KeyFile.householdSigned(repoID: id, sealed: sealed))))]
        try target.put(name, Array((JSON.serialize(v) + "\n").utf8), replacing: false)
    }

    /// The file name of a pack.
    static func packName(_ id: BlobID) -> String { "data/\(id.hex.prefix(2))/\(id.hex)" }

    /// Whether blob `e` of a pack's `file` opens: it authenticates under the repository's keys
    /// and is the chunk its ID names. A damaged pack's other blobs may well still do.
    func blobOpens(_ file: [UInt8]?, _ e: PackEntry, using zstd: Compression.Contexts) -> Bool {
        guard let file, Int(e.offset) + Int(e.length) <= file.count else { return false }
        return PackReader.openChunk(file[Int(e.offset)..<Int(e.offset) + Int(e.length)], id: e.id, rawLength: Int(e.rawLength),
                                    key: key, using: zstd) != nil
    }

    /// Pack `id`'s file when it can be read and its BLAKE2b matches its ID; nil when it is
    /// missing, unreadable or damaged.
    func intactPack(_ id: BlobID) -> [UInt8]? {
        guard let file = try? target.get(Repository.packName(id)), BlobID(Blake2b.hash(file)) == id else { return nil }
        return file
    }
}

/// Pack files as restore and prune check them, each read once: whether the file matches its ID, and for
/// one that does not (kept in memory: there are few), which blobs still open.
final class PackChecks {
    private let repository: Repository
    private let zstd = Compression.Contexts()
    private var intact: [BlobID: Bool] = [:]
    private var damagedFiles: [BlobID: [UInt8]] = [:]

    init(_ repository: Repository) { self.repository = repository }

    func isIntact(_ p: BlobID) -> Bool {
        if let known = intact[p] { return known }
        let file = try? repository.target.get(Repository.packName(p))
        let ok = file.map { BlobID(Blake2b.hash($0)) == p } ?? false
        intact[p] = ok
        if !ok, let file { damagedFiles[p] = file }
        return ok
    }

    /// Found damaged by an earlier check (a pack never checked is not).
    func knownDamaged(_ p: BlobID) -> Bool { intact[p] == false }

    /// Whether blob `e` of pack `p` opens (every blob of an intact pack does).
    func opens(_ e: PackEntry, in p: BlobID) -> Bool {
        isIntact(p) || repository.blobOpens(damagedFiles[p], e, using: zstd)
    }

    /// A damaged pack's file, when it could be read.
    func damagedFile(_ p: BlobID) -> [UInt8]? { isIntact(p) ? nil : damagedFiles[p] }
}

/// The `keys/` entries: the repository key wrapped for the group and sealed for recovery
/// (protocol/SPEC.md 5.5). Version 1 entries wrap the master key alone; version 2 entries,
/// written after the group key rotated, wrap the master key followed by every data key so far.
enum KeyFile {
    static let entriesLabel = Array("hubsync-backup-v1 repository-keys".utf8)

    static func groupAD(repoID: String, groupID: [UInt8], backupEpoch: UInt32, label: [UInt8] = Label.repositoryKey) -> [UInt8] {
        var w = ByteWriter()
        w.append(label)
        w.append(Array(repoID.utf8))
        w.append(groupID)
        w.u32(backupEpoch)
        return w.bytes
    }

    static func groupAD(repoID: String, household: HouseholdSecrets) -> [UInt8] {
        groupAD(repoID: repoID, groupID: household.groupID, backupEpoch: household.backupEpoch)
    }

    /// The name part that tells apart two keys of one epoch (concurrent rotations): the first 8
    /// bytes of BLAKE2b keyed with the group key over the repository's ID, in hex.
    static func entryTag(repoID: String, groupKey: SymmetricKey) -> String {
        hexEncode(Blake2b.hash(Array("hubsync-backup-v1 key-entry".utf8) + Array(repoID.utf8), outputLength: 16,
                               key: groupKey).prefix(8))
    }

    /// Writes the group entry of a new repository; returns its name and bytes.
    @discardableResult
    static func writeGroup(_ key: RepositoryKey, repoID: String, household: HouseholdSecrets,
                           to target: any BackupTarget) throws(BackupError) -> (name: String, bytes: [UInt8]) {
        let wrapped = key.master.withUnsafeBytes { m in
            Sealed.seal([UInt8](m), key: household.groupKey, ad: groupAD(repoID: repoID, household: household))
        }
        let v: Value = ["version": 1, "kind": "group", "group_id": .string(household.groupIDHex),
                        "epoch": .int(Int64(household.backupEpoch)), "wrapped": .string(hexEncode(wrapped))]
        let name = "keys/group-\(household.groupIDHex)-\(household.backupEpoch)"
        let bytes = Array((JSON.serialize(v) + "\n").utf8)
        try target.put(name, bytes, replacing: false)
        return (name, bytes)
    }

    static func writeRecovery(_ key: RepositoryKey, recoveryPublicKey: [UInt8],
                              to target: any BackupTarget) throws(BackupError) {
        let sealed = HouseholdSecrets.seal(key.master.withUnsafeBytes { SecureBytes(copying: $0) }, toRecoveryKey: recoveryPublicKey)
        let v: Value = ["version": 1, "kind": "recovery", "recovery_public_key": .string(hexEncode(recoveryPublicKey)),
                        "sealed": .string(hexEncode(sealed))]
        try target.put("keys/recovery-\(hexEncode(recoveryPublicKey.prefix(8)))", Array((JSON.serialize(v) + "\n").utf8),
                       replacing: false)
    }

    /// The name of the version 2 group entry of the held group key.
    static func groupEntryName(repoID: String, household: HouseholdSecrets) -> String {
        "keys/group-\(household.groupIDHex)-\(household.backupEpoch)-\(entryTag(repoID: repoID, groupKey: household.groupKey))"
    }

    /// Writes a version 2 entry for the held group key: the master key and every data key of
    /// `key`, then `dataKey` (fresh, so a device removed before this epoch never held it); and a
    /// recovery entry with the same keys. Concurrent writers of one name: the first one stays.
    static func writeEpoch(_ key: RepositoryKey, adding dataKey: SymmetricKey, repoID: String,
                           household: HouseholdSecrets, to target: any BackupTarget) throws(BackupError) {
        let next = RepositoryKey(master: key.master, extraDataKeys: key.extraDataKeys + [dataKey], writing: dataKey)
        let material = next.material
        let wrapped = material.withUnsafeBytes { m in
            Sealed.seal([UInt8](m), key: household.groupKey,
                        ad: groupAD(repoID: repoID, groupID: household.groupID, backupEpoch: household.backupEpoch,
                                    label: entriesLabel))
        }
        if household.hasRecoveryKey {
            let sealed = HouseholdSecrets.seal(material, toRecoveryKey: household.recoveryPublicKey)
            let r: Value = ["version": 2, "kind": "recovery", "recovery_public_key": .string(hexEncode(household.recoveryPublicKey)),
                            "epoch": .int(Int64(household.backupEpoch)), "sealed": .string(hexEncode(sealed))]
            let tag = hexEncode(Blake2b.hash(Array(sealed), outputLength: 32).prefix(8))
            try target.put("keys/recovery-\(hexEncode(household.recoveryPublicKey.prefix(8)))-\(tag)",
                           Array((JSON.serialize(r) + "\n").utf8), replacing: false)
        }
        let v: Value = ["version": 2, "kind": "group", "group_id": .string(household.groupIDHex),
                        "epoch": .int(Int64(household.backupEpoch)), "wrapped": .string(hexEncode(wrapped))]
        try target.put(groupEntryName(repoID: repoID, household: household), Array((JSON.serialize(v) + "\n").utf8),
                       replacing: false)
    }

    /// What the signer of a `household` entry signs: a label, the repository's ID, the sealed secrets.
    static func householdSigned(repoID: String, sealed: [UInt8]) -> [UInt8] {
        Array("hubsync-backup-v1 household-entry".utf8) + Array(repoID.utf8) + sealed
    }

    /// The signed `household` entries the recovery key opens, highest epoch first. Unsigned
    /// (version 1) entries are skipped: anyone who can write a file could have planted them,
    /// since the recovery key's public half is no secret.
    static func households(target: any BackupTarget, repoID: String, recoveryKey: RecoveryKey) -> [RecoveredHousehold] {
        let pair = recoveryKey.keyPair
        var found: [RecoveredHousehold] = []
        for (name, _) in (try? target.list("keys")) ?? [] where name.hasPrefix("keys/household-") {
            guard let e = (try? JSON.parse(try target.get(name)))?.objectValue,
                  e["recovery_public_key"]?.stringValue == hexEncode(pair.publicKey),
                  let sealed = e["sealed"]?.stringValue.flatMap(hexDecode),
                  let signerBytes = e["signer"]?.stringValue.flatMap(hexDecode),
                  let signer = try? PublicSigningKey(rawRepresentation: signerBytes),
                  let signature = e["signature"]?.stringValue.flatMap(hexDecode),
                  signer.isValidSignature(signature, for: householdSigned(repoID: repoID, sealed: sealed)),
                  let plain = pair.open(sealed: sealed),
                  let secrets = try? HouseholdSecrets(encoded: plain) else { continue }
            found.append(RecoveredHousehold(secrets: secrets, signer: signer))
        }
        return found.sorted { $0.secrets.epoch > $1.secrets.epoch }
    }

    /// The keys that one entry's material holds: the master key, then the data keys.
    static func split(_ material: [UInt8]) -> (master: SymmetricKey, data: [SymmetricKey])? {
        guard material.count >= 32, material.count % 32 == 0 else { return nil }
        let keys = stride(from: 0, to: material.count, by: 32).map { SymmetricKey(copying: material[$0..<($0 + 32)]) }
        return (keys[0], Array(keys.dropFirst()))
    }

    /// Gathers the keys of every entry that opens: `held` is whether the held group key opened
    /// one (then `writing` is its newest data key, or nil for the master's).
    struct Gathered {
        var master: SymmetricKey?
        var data: [SymmetricKey] = []
        /// The epoch of the entry that added each of `data` (-1 until one is opened).
        var epochs: [Int64] = []
        var held = false
        var writing: SymmetricKey?
        var writingEpoch: Int64 = -1

        mutating func add(_ material: [UInt8], epoch: Int64, isHeld: Bool) {
            guard let (m, d) = KeyFile.split(material), master == nil || master == m else { return }
            master = m
            for (i, k) in d.enumerated() {
                let own = i == d.count - 1 ? epoch : -1
                if let at = data.firstIndex(of: k) {
                    epochs[at] = max(epochs[at], own)
                } else {
                    data.append(k)
                    epochs.append(own)
                }
            }
            if isHeld || (!held && epoch > writingEpoch) {
                writing = d.last
                writingEpoch = epoch
                held = held || isHeld
            }
        }

        var key: RepositoryKey? {
            master.map { RepositoryKey(master: $0, extraDataKeys: data, epochs: epochs, writing: writing) }
        }
    }

    static func unwrap(repoID: String, target: any BackupTarget, household: HouseholdSecrets?,
                       recoveryKey: RecoveryKey?) throws(BackupError) -> (key: RepositoryKey, held: Bool) {
        var entries: [[String: Value]] = []
        for (name, _) in try target.list("keys") {
            if let o = (try? JSON.parse(try target.get(name)))?.objectValue { entries.append(o) }
        }
        var gathered = Gathered()
        if let recoveryKey {
            let pair = recoveryKey.keyPair
            for e in entries where e["kind"]?.stringValue == "recovery" {
                guard e["recovery_public_key"]?.stringValue == hexEncode(pair.publicKey),
                      let sealed = e["sealed"]?.stringValue.flatMap(hexDecode),
                      let material = pair.open(sealed: sealed) else { continue }
                var epoch: Int64 = 0
                if case .int(let n) = e["epoch"] ?? .null { epoch = n }
                material.withUnsafeBytes { gathered.add([UInt8]($0), epoch: epoch, isHeld: false) }
            }
            guard let key = gathered.key else {
                throw BackupError(.wrongKey, "the recovery key does not open the repository at \(target.description): it is "
                    + "another household's key (its check characters are right, so it was typed correctly); "
                    + "find the recovery key printed by `hubsync init` on this household's first device")
            }
            return (key, false)
        }
        guard let household else {
            throw BackupError(.wrongKey, "no household secrets on this device to open \(target.description); "
                + "pass --recovery-key KEY")
        }
        for e in entries where e["kind"]?.stringValue == "group" && e["group_id"]?.stringValue == household.groupIDHex {
            guard case .int(let epoch) = e["epoch"] ?? .null, epoch >= 0, epoch <= Int64(UInt32.max),
                  let wrapped = e["wrapped"]?.stringValue.flatMap(hexDecode) else { continue }
            let v2 = e["version"] == .int(2)
            let ad = groupAD(repoID: repoID, groupID: household.groupID, backupEpoch: UInt32(epoch),
                             label: v2 ? entriesLabel : Label.repositoryKey)
            for held in household.heldKeys where UInt32(clamping: held.epoch + 1) == UInt32(epoch) {
                guard var material = Sealed.open(wrapped[...], key: held.key, ad: ad) else { continue }
                gathered.add(material, epoch: epoch, isHeld: held.key == household.groupKey)
                for i in material.indices { material[i] = 0 }
            }
        }
        guard let key = gathered.key else {
            throw BackupError(.wrongKey, "the repository at \(target.description) is not this household's (no key entry "
                + "for group \(household.groupIDHex.prefix(8))… opens it with a key of epoch \(household.epoch) or an "
                + "earlier one this device held); use --recovery-key KEY if it is yours, or another --repo")
        }
        return (key, gathered.held)
    }
}
