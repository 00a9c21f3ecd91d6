import Foundation
import HubSyncBase
import HubSyncCrypto
import Synchronization

/// The storing side of peer targets: the repositories this device keeps for other members, in
/// `DATA/backups/<member's device ID hex>/repo/`, under a quota per member (protocol/SPEC.md 5.12).
///
/// Append-only: a file is added once and never replaced (leases under `locks/` excepted) nor
/// deleted (leases excepted). A prune plan signed by a household member moves files into
/// `DATA/backups/<hex>/quarantine/<plan>/`, kept `quarantineSeconds` before the space is freed.
/// It sees only what the repository layer already encrypted.
public final class PeerStorage: Sendable {
    public let root: String
    public let quota: Int
    /// How far prune plans may take a device's usage past its quota: an eighth of it, and at least
    /// the cost of a few plans (64 KiB), so that a full repository can always be pruned.
    public var planAllowance: Int { max(quota / 8, 64 * 1024) }
    public let quarantineSeconds: Int
    /// Bytes stored per member (repository and quarantine), counted once per process.
    let usage = Mutex<[DeviceID: Int]>([:])
    /// One request at a time per storage: quota checks and moves stay consistent.
    let gate = Mutex<Void>(())

    public static let defaultQuota = 10 << 30
    public static let defaultQuarantineSeconds = 7 * 86_400
    /// What each stored file and folder costs at least against the quota (a file-system block),
    /// so empty files under new folders are not free.
    public static let entryCost = 4096

    /// Storage under `dataDirectory/backups`.
    public init(dataDirectory: String, quota: Int = defaultQuota, quarantineSeconds: Int = defaultQuarantineSeconds) {
        root = DataDirectory(path: dataDirectory).file(DataDirectory.peerBackupsFolder)
        self.quota = quota
        self.quarantineSeconds = quarantineSeconds
    }

    func area(_ client: DeviceID) -> String { root + "/" + client.hex }
    func repository(_ client: DeviceID) -> LocalTarget { LocalTarget(path: area(client) + "/repo") }

    /// Answers one request from `client`, already authenticated and trusted. `isMember` says
    /// whether a prune plan's signer may remove files (a current household member or trusted peer).
    public func handle(_ request: PeerProtocol.Request, from client: DeviceID, server: DeviceID,
                       isMember: (PublicSigningKey) -> Bool) -> [UInt8] {
        gate.withLock { _ in
            do throws(BackupError) { return PeerProtocol.response(.ok, try answer(request, client: client, server: server, isMember: isMember)) }
            catch {
                // The client learns what failed, not where this peer keeps its files.
                let area = self.area(client)
                let message = error.message.replacingOccurrences(of: area + "/repo/", with: "")
                    .replacingOccurrences(of: area, with: "this device's area").replacingOccurrences(of: root, with: "the peer's backups folder")
                return PeerProtocol.response(BackupError(error.code, message))
            }
        }
    }

    private func answer(_ q: PeerProtocol.Request, client: DeviceID, server: DeviceID,
                        isMember: (PublicSigningKey) -> Bool) throws(BackupError) -> [UInt8] {
        let repo = repository(client)
        if q.operation != .usage && q.operation != .prune {
            guard PeerProtocol.isValidName(q.name) else {
                throw BackupError(.invalidInput, "\"\(q.name)\" is not a repository file name")
            }
        }
        switch q.operation {
        case .put:
            let isLease = q.name.hasPrefix("locks/")
            if q.replacing && !isLease {
                throw BackupError(.refused, "\(q.name) may not be replaced: this peer keeps backups append-only "
                    + "(only leases under locks/ are replaced); nothing stored was changed")
            }
            let old = fileSize(repo.full(q.name))
            if old != nil, !isLease { return [] } // added once, never replaced
            let used = try currentUsage(client)
            let folders = missingFolders((repo.full(q.name) as NSString).deletingLastPathComponent, below: area(client))
            let grows = Self.cost(q.data.count) + folders * Self.entryCost - (old.map(Self.cost) ?? 0)
            if grows > 0, used + grows > quota {
                let quarantined = quarantineBytes(client)
                throw BackupError(.overQuota, "over quota: storing \(q.name) (\(q.data.count) bytes) would use "
                    + "\(used + grows) of the \(quota) bytes this peer keeps for this device"
                    + (quarantined > 0 ? " (\(quarantined) bytes are in quarantine until freed)" : "")
                    + "; run `hubsync backup forget --prune` or raise \"peer_backups\": {\"quota_bytes\"} in the peer's "
                    + "config.json; nothing already stored was lost")
            }
            try repo.put(q.name, q.data, replacing: isLease)
            usage.withLock { $0[client, default: 0] += grows }
            return []
        case .get:
            // A folder is no file: not found (1), not an I/O failure a client would retry.
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: repo.full(q.name), isDirectory: &isFolder), isFolder.boolValue {
                throw BackupError(.notFound, "\(q.name) is a folder, not a file")
            }
            return try repo.get(q.name)
        case .range:
            guard q.length <= PeerProtocol.maxRangeLength else {
                throw BackupError(.invalidInput, "a range of \(q.length) bytes is over the \(PeerProtocol.maxRangeLength)-byte limit")
            }
            guard let size = fileSize(repo.full(q.name)) else {
                throw BackupError(.notFound, "\(q.name) does not exist")
            }
            guard q.offset <= UInt64(size), UInt64(q.length) <= UInt64(size) - q.offset else {
                throw BackupError(.invalidInput, "the range \(q.offset)+\(q.length) is outside \(q.name) (\(size) bytes)")
            }
            return try repo.get(q.name, offset: Int(q.offset), length: Int(q.length))
        case .list:
            return PeerProtocol.encodeList(try repo.list(q.name))
        case .exists:
            return [try repo.exists(q.name) ? 1 : 0]
        case .delete:
            guard q.name.hasPrefix("locks/") else {
                throw BackupError(.refused, "\(q.name) may not be deleted directly: this peer keeps backups append-only; "
                    + "removals go through a signed prune plan into quarantine")
            }
            let size = fileSize(repo.full(q.name)).map(Self.cost) ?? 0
            try repo.delete(q.name)
            usage.withLock { $0[client, default: 0] -= size }
            return []
        case .usage:
            purgeExpired(client)
            return PeerProtocol.Usage(used: max(0, try currentUsage(client)), quota: quota,
                                      quarantined: quarantineBytes(client)).encoded()
        case .prune:
            guard q.data.count <= PeerProtocol.maxPrunePlanSize else {
                throw BackupError(.invalidInput, "a prune plan of \(q.data.count) bytes is over the "
                    + "\(PeerProtocol.maxPrunePlanSize)-byte limit; split it; nothing was removed")
            }
            let plan = try PrunePlan.verify(q.data)
            guard plan.server == server else {
                throw BackupError(.refused, "the prune plan names another storing device (\(plan.server.short)); nothing was removed")
            }
            guard isMember(plan.signer) else {
                throw BackupError(.refused, "the prune plan is signed by \(DeviceID(publicKey: plan.signer).short), "
                    + "not a member of this household; nothing was removed")
            }
            for n in plan.names where !PeerProtocol.isValidName(n) || n.hasPrefix("locks/") {
                throw BackupError(.invalidInput, "the prune plan names \"\(n)\", not a repository file; nothing was removed")
            }
            purgeExpired(client)
            // The plan, its release time and its folders are stored here too: they count. Plans
            // may pass the quota by ``planAllowance``, so a full repository can still be pruned.
            let planCost = Self.cost(q.data.count) + 2 * Self.cost(32) + 3 * Self.entryCost
            let used = try currentUsage(client)
            guard used + planCost <= quota + planAllowance else {
                throw BackupError(.overQuota, "over quota: keeping this prune plan (\(planCost) bytes with its folders) "
                    + "would use \(used + planCost) of the \(quota) bytes (and \(planAllowance) more for plans) this peer keeps for this device; wait until "
                    + "quarantine is freed or raise \"peer_backups\": {\"quota_bytes\"} in the peer's config.json; "
                    + "nothing was removed")
            }
            return try quarantine(plan, signed: q.data, client: client)
        }
    }

    /// Moves the plan's files into a new quarantine folder, with the signed plan beside them.
    private func quarantine(_ plan: PrunePlan, signed: [UInt8], client: DeviceID) throws(BackupError) -> [UInt8] {
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        let release = now + UInt64(quarantineSeconds) * 1000
        let folder = area(client) + "/quarantine/" + String(now) + "-" + hexEncode(Blake2b.hash(signed, outputLength: 16).prefix(8))
        let box = LocalTarget(path: folder)
        let folders = missingFolders(folder, below: area(client))
        try box.put("plan", signed, replacing: true)
        let releaseText = Array("\(release)\n".utf8)
        try box.put("release", releaseText, replacing: true)
        usage.withLock { $0[client, default: 0] += Self.cost(signed.count) + Self.cost(releaseText.count) + folders * Self.entryCost }
        let repo = repository(client)
        var moved: [String] = []
        for name in plan.names {
            let from = repo.full(name), to = folder + "/files/" + name
            guard access(from, F_OK) == 0 else { continue }
            let dir = (to as NSString).deletingLastPathComponent
            let made = missingFolders(dir, below: folder)
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            usage.withLock { $0[client, default: 0] += made * Self.entryCost }
            guard rename(from, to) == 0 else {
                throw BackupError(.io, "cannot move \(name) into quarantine: \(Errno.message(errno)); "
                    + "\(moved.count) files were moved before, the rest is still stored")
            }
            moved.append(name)
        }
        return PeerProtocol.encodeMoved(release: release, names: moved)
    }

    /// Frees quarantine folders whose time is up.
    func purgeExpired(_ client: DeviceID) {
        let base = area(client) + "/quarantine"
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] {
            guard let text = FileManager.default.contents(atPath: base + "/" + entry + "/release"),
                  let release = UInt64(String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
                  release <= now else { continue }
            let size = treeSize(base + "/" + entry) + Self.entryCost // and the folder itself
            if (try? FileManager.default.removeItem(atPath: base + "/" + entry)) != nil {
                usage.withLock { $0[client, default: 0] -= size }
            }
        }
    }

    func currentUsage(_ client: DeviceID) throws(BackupError) -> Int {
        if let known = usage.withLock({ $0[client] }) { return known }
        let size = treeSize(area(client))
        usage.withLock { $0[client] = size }
        return size
    }

    func quarantineBytes(_ client: DeviceID) -> Int { treeSize(area(client) + "/quarantine") }

    func fileSize(_ path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        return Int(st.st_size)
    }

    /// What a file of `size` bytes costs against the quota.
    static func cost(_ size: Int) -> Int { max(size, entryCost) }

    /// How many folders from `dir` up to (not including) `base` do not exist yet.
    func missingFolders(_ dir: String, below base: String) -> Int {
        var count = 0, path = dir
        while path.count > base.count, access(path, F_OK) != 0 {
            count += 1
            path = (path as NSString).deletingLastPathComponent
        }
        return count
    }

    /// What the files and folders under `path` cost against the quota (``cost(_:)`` each file,
    /// ``entryCost`` each folder).
    func treeSize(_ path: String) -> Int {
        guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total = 0
        while let rel = walker.nextObject() as? String {
            if let size = fileSize(path + "/" + rel) { total += Self.cost(size) } else { total += Self.entryCost }
        }
        return total
    }
}
