import Foundation
import HubSyncBase
public import HubSyncCore
public import HubSyncCrypto

/// One snapshot's manifest: when, from where, what it holds, and its chunks in order.
public struct Snapshot: Sendable {
    /// The snapshot file's ID (BLAKE2b-256 of the file).
    public var id: BlobID
    /// When the snapshot was taken, in Unix milliseconds.
    public var time: UInt64
    /// The device it was taken on (text form) and that device's host name.
    public var device: String
    public var hostname: String
    /// Records exported (tombstones included) and live records per collection.
    public var records: Int
    public var collections: [String: Int]
    /// Plaintext bytes of the export and bytes this snapshot added to the repository.
    public var bytes: Int
    public var addedBytes: Int
    /// The store's hybrid logical clock when the snapshot was taken.
    public var clock: Timestamp
    /// The household's secrets, so a restore with the recovery key gets the group key back.
    public var household: HouseholdSecrets?
    /// The chunks of the export, in order.
    public var chunks: [BlobID]

    /// Age of the snapshot, in seconds, at `now`.
    public func age(now: Date = Date()) -> Double {
        max(0, now.timeIntervalSince1970 - Double(time) / 1000)
    }

    /// The manifest as the `list --json` output shows it (no secrets, no chunk list).
    public var summary: Value {
        var cols: [String: Value] = [:]
        for (k, v) in collections { cols[k] = .int(Int64(v)) }
        return ["id": .string(id.hex), "short_id": .string(id.short), "time": .int(Int64(time)),
                "time_iso": .string(iso8601(time)), "device": .string(device), "hostname": .string(hostname),
                "records": .int(Int64(records)), "collections": .object(cols), "bytes": .int(Int64(bytes)),
                "added_bytes": .int(Int64(addedBytes)), "chunks": .int(Int64(chunks.count)),
                "clock": .string(clock.description)]
    }

    func encode() -> [UInt8] {
        var cols: [String: Value] = [:]
        for (k, v) in collections { cols[k] = .int(Int64(v)) }
        var o: [String: Value] = [
            "version": 1, "time": .int(Int64(time)), "device": .string(device), "hostname": .string(hostname),
            "stores": [["name": "store", "records": .int(Int64(records)), "collections": .object(cols)]],
            "bytes": .int(Int64(bytes)), "added_bytes": .int(Int64(addedBytes)), "clock": .string(clock.description),
            "chunk_count": .int(Int64(chunks.count)),
        ]
        if let h = household {
            o["household"] = ["group_id": .string(h.groupIDHex),
                              "group_key": .string(h.groupKey.withUnsafeBytes { hexEncode($0) }),
                              "epoch": .int(Int64(h.backupEpoch)),
                              "recovery_public_key": .string(hexEncode(h.recoveryPublicKey))]
        }
        let json = Array(JSON.serialize(.object(o)).utf8)
        var w = ByteWriter()
        w.u32(UInt32(json.count))
        w.append(json)
        for c in chunks { w.append(c.bytes) }
        return w.bytes
    }

    static func decode(_ plain: [UInt8], id: BlobID) throws(BackupError) -> Snapshot {
        var r = RepositoryReader(plain, context: "snapshot \(id.short)")
        let n = Int(try r.u32())
        let jsonBytes = Array(try r.take(n))
        guard let o = (try? JSON.parse(jsonBytes))?.objectValue,
              case .int(let time) = o["time"] ?? .null, case .int(let count) = o["chunk_count"] ?? .null,
              let store = o["stores"]?.arrayValue?.first?.objectValue,
              case .int(let records) = store["records"] ?? .null,
              let clock = o["clock"]?.stringValue.flatMap({ Timestamp(text: $0) }) else {
            throw BackupError(.damaged, "snapshot \(id.short) has a damaged manifest")
        }
        guard count >= 0, Int(count) * 32 == r.remaining else {
            throw BackupError(.damaged, "snapshot \(id.short) lists \(count) chunks but holds \(r.remaining / 32)")
        }
        var chunks: [BlobID] = []
        chunks.reserveCapacity(Int(count))
        for _ in 0..<count { chunks.append(try r.id()) }
        var cols: [String: Int] = [:]
        for (k, v) in store["collections"]?.objectValue ?? [:] { if case .int(let x) = v { cols[k] = Int(x) } }
        func int(_ k: String) -> Int { if case .int(let x) = o[k] ?? .null { return Int(x) }; return 0 }
        var household: HouseholdSecrets?
        if let h = o["household"]?.objectValue, let gid = h["group_id"]?.stringValue.flatMap(hexDecode),
           [HouseholdSecrets.groupIDByteCount, HouseholdSecrets.legacyGroupIDByteCount].contains(gid.count),
           let gkey = h["group_key"]?.stringValue.flatMap(hexDecode), gkey.count == 32,
           case .int(let epoch) = h["epoch"] ?? .null, epoch >= 0,
           let rpk = h["recovery_public_key"]?.stringValue.flatMap(hexDecode), rpk.count == 32 {
            // Snapshots name the backup epoch (the key epoch + 1).
            household = HouseholdSecrets(groupID: gid, groupKey: SymmetricKey(copying: gkey),
                                         epoch: HouseholdSecrets.epoch(fromBackupEpoch: UInt64(epoch)), recoveryPublicKey: rpk)
        }
        return Snapshot(id: id, time: UInt64(time), device: o["device"]?.stringValue ?? "",
                        hostname: o["hostname"]?.stringValue ?? "", records: Int(records), collections: cols,
                        bytes: int("bytes"), addedBytes: int("added_bytes"), clock: clock, household: household,
                        chunks: chunks)
    }
}

func iso8601(_ ms: UInt64) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

extension Repository {
    /// Every snapshot, oldest first.
    public func snapshots() throws(BackupError) -> [Snapshot] {
        var out: [Snapshot] = []
        for (name, _) in try target.list("snapshots") {
            out.append(try loadSnapshot(name: name))
        }
        return out.sorted { ($0.time, $0.id) < ($1.time, $1.id) }
    }

    func loadSnapshot(name: String) throws(BackupError) -> Snapshot {
        let file = try target.get(name)
        let id = BlobID(Blake2b.hash(file))
        guard id.hex == name.split(separator: "/").last.map(String.init),
              let plain = Sealed.open(file[...], key: key.data, ad: Label.snapshot) else {
            throw BackupError(.damaged, "snapshot file \(name) is damaged (its hash or authentication fails); "
                + "`hubsync backup forget` it or restore another snapshot")
        }
        return try Snapshot.decode(plain, id: id)
    }

    /// The snapshot named by `text`: `latest`, a full ID or a unique prefix of one.
    public func snapshot(named text: String) throws(BackupError) -> Snapshot {
        let all = try snapshots()
        if text == "latest" {
            guard let last = all.last else {
                throw BackupError(.notFound, "the repository at \(target.description) has no snapshots yet; "
                    + "take one with `hubsync backup now`")
            }
            return last
        }
        let matches = all.filter { $0.id.hex.hasPrefix(text.lowercased()) }
        guard !text.isEmpty, matches.count == 1 else {
            throw BackupError(matches.isEmpty ? .notFound : .invalidInput,
                              matches.isEmpty ? "no snapshot \(text) in \(target.description); see `hubsync backup list`"
                                  : "\(text) names \(matches.count) snapshots; give more characters of the ID")
        }
        return matches[0]
    }

    func writeSnapshot(_ s: Snapshot) throws(BackupError) -> BlobID {
        let file = Sealed.seal(s.encode(), key: key.data, ad: Label.snapshot)
        let id = BlobID(Blake2b.hash(file))
        try target.put("snapshots/" + id.hex, file, replacing: false)
        return id
    }
}
