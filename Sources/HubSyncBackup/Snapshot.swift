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
    /// The household's secrets from a manifest written before manifests stopped carrying the
    /// group key (protocol/SPEC.md 5.9); nil for newer snapshots, whose household a restore with
    /// the recovery key finds in the repository's `keys/household-…` entries instead.
    public var household: HouseholdSecrets?
    /// The chunks of the export, in order.
    public var chunks: [BlobID]
    /// The backup epoch of the data key that opened the file (-1 unknown, -2 the master's); not stored.
    var keyEpoch: Int64 = -2

    /// Age of the snapshot, in seconds, at `now`.
    public func age(now: Date = Date()) -> Double {
        max(0, now.timeIntervalSince1970 - Double(time) / 1000)
    }

    /// The manifest as the `list --json` output shows it (no secrets, no chunk list).
    public var summary: Value {
        var cols: [String: Value] = [:]
        for (k, v) in collections { cols[k] = .int(Int64(v)) }
        // One time form in JSON (RFC 3339, UTC, milliseconds); the clock reading in a field named as such.
        return ["id": .string(id.hex), "short_id": .string(id.short), "time": .string(rfc3339(millis: time)),
                "device": .string(device), "hostname": .string(hostname),
                "records": .int(Int64(records)), "collections": .object(cols), "bytes": .int(Int64(bytes)),
                "added_bytes": .int(Int64(addedBytes)), "chunks": .int(Int64(chunks.count)),
                "clock_hlc": .string(clock.description)]
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
        // Never the group key: a device removed later may still hold this repository's old keys.
        if let h = household {
            o["household"] = ["group_id": .string(h.groupIDHex), "epoch": .int(Int64(h.backupEpoch)),
                              "recovery_public_key": .string(hexEncode(h.recoveryPublicKey))]
        }
        let json = Array(JSON.serialize(.object(o)).utf8)
        var w = ByteWriter()
        w.bytes.reserveCapacity(4 + json.count + 32 * chunks.count)
        w.u32(UInt32(json.count))
        w.append(json)
        for c in chunks { w.id(c) }
        return w.bytes
    }

    /// The latest time a manifest may name: the end of the year 9999 (Unix ms).
    static let maxTime: UInt64 = 253_402_300_799_999

    /// With `chunkList` false, the list's length is checked but its IDs are not read
    /// (``chunks`` is empty).
    static func decode(_ plain: [UInt8], id: BlobID, chunkList: Bool = true) throws(BackupError) -> Snapshot {
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
        // Checked before any arithmetic on them: a manifest is whatever a key holder wrote.
        guard time >= 0, UInt64(time) <= Self.maxTime, records >= 0 else {
            throw BackupError(.damaged, "snapshot \(id.short) has a damaged manifest (its time or record count is out of range)")
        }
        guard count >= 0, count <= Int64(r.remaining / 32), Int(count) * 32 == r.remaining else {
            throw BackupError(.damaged, "snapshot \(id.short) lists \(count) chunks but holds \(r.remaining / 32)")
        }
        var chunks: [BlobID] = []
        if chunkList {
            chunks.reserveCapacity(Int(count))
            for _ in 0..<count { chunks.append(try r.id()) }
        }
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

/// A snapshot file this device cannot read, and why: it affects that snapshot only.
public struct UnreadableSnapshot: Sendable, Equatable {
    public enum Reason: String, Sendable {
        /// Its content does not match its name: damaged, safe to forget (`backup forget --damaged`).
        case damaged
        /// Intact, but no key this device holds opens it: written under a newer key (this device
        /// is behind on its grant, or was removed), or by someone outside the household.
        case keyNotHeld = "key_not_held"
        /// It opens but does not decode.
        case malformed
        /// It opens only with the data key of an epoch that had ended when it claims to have been
        /// written (a snapshot under a newer key is older): a removed device, which still holds
        /// that key, may have written it. Listed, never taken as `latest` or kept by retention.
        case retiredKey = "retired_key"
        /// It claims a time well ahead of this device's clock (``Repository/futureTolerance``): a
        /// device removed from the household could date a snapshot so to make it the newest.
        /// Listed, never taken as `latest`, kept (not forgotten) by retention.
        case future = "dated_in_future"
    }

    /// The file's name in the repository (`snapshots/ID`).
    public var name: String
    public var reason: Reason
    /// What happened and what to do.
    public var message: String

    /// The manifest, when the file opened (a snapshot under a retired key).
    public var snapshot: Snapshot?

    public init(name: String, reason: Reason, message: String, snapshot: Snapshot? = nil) {
        self.name = name
        self.reason = reason
        self.message = message
        self.snapshot = snapshot
    }

    public static func == (a: UnreadableSnapshot, b: UnreadableSnapshot) -> Bool {
        a.name == b.name && a.reason == b.reason
    }

    /// The first 8 hex characters of the file's name.
    public var short: String { String((name.split(separator: "/").last ?? "").prefix(8)) }
}

extension Repository {
    /// How far ahead of this device's clock a snapshot's time may be (ms) and still be taken as
    /// the newest: clocks of a household's devices differ by seconds, not by ten minutes.
    public static let futureTolerance: UInt64 = 10 * 60 * 1000

    /// Every snapshot this device can read, oldest first; the others are in ``scanSnapshots()``.
    public func snapshots() throws(BackupError) -> [Snapshot] {
        try scanSnapshots().readable
    }

    /// Every snapshot file: those this device reads (oldest first) and those it cannot, with why.
    /// One unreadable file never hides the others (protocol/SPEC.md 5.9). With `chunkLists`
    /// false, each snapshot's list of chunks is left out (``Snapshot/chunks`` empty): at a million
    /// records each list is about 13 MB.
    public func scanSnapshots(chunkLists: Bool = true) throws(BackupError) -> (readable: [Snapshot], unreadable: [UnreadableSnapshot]) {
        var out: [Snapshot] = []
        var unreadable: [UnreadableSnapshot] = []
        for (name, _) in try target.list("snapshots") {
            do throws(BackupError) {
                out.append(try loadSnapshot(name: name, chunkList: chunkLists))
            } catch where error.code == .damaged || error.code == .wrongKey {
                unreadable.append(UnreadableSnapshot(name: name, reason: Self.reason(error), message: error.message))
            } catch where error.code == .notFound {
                // Forgotten between the listing and the reading (retention or `forget` in
                // another process): it is no longer one of the repository's snapshots.
                continue
            }
        }
        // A snapshot sealed under an older epoch's data key that claims a time after the first
        // snapshot under a newer key was written once that key had been retired (5.9).
        var firstUnder: [Int64: UInt64] = [:]
        for snap in out where snap.keyEpoch >= 0 { firstUnder[snap.keyEpoch] = min(firstUnder[snap.keyEpoch] ?? .max, snap.time) }
        var readable: [Snapshot] = []
        let horizon = UInt64(max(0, Date().timeIntervalSince1970 * 1000)) + Self.futureTolerance
        for snap in out {
            if snap.time > horizon {
                unreadable.append(UnreadableSnapshot(
                    name: "snapshots/" + snap.id.hex, reason: .future,
                    message: "snapshot \(snap.id.short) claims to have been taken at \(rfc3339(millis: snap.time, fractional: false)), ahead of this "
                        + "device's clock: a device with a wrong clock, or one removed from the household, wrote it; it is "
                        + "never taken as the latest; restore it only by its ID if you know it is genuine (with --revert, "
                        + "which writes its values as new changes, if its records' clock readings are refused as too far ahead)",
                    snapshot: snap))
                continue
            }
            let retiredAt = firstUnder.filter { $0.key > snap.keyEpoch }.map(\.value).min()
            guard let retiredAt, snap.time > retiredAt else { readable.append(snap); continue }
            unreadable.append(UnreadableSnapshot(
                name: "snapshots/" + snap.id.hex, reason: .retiredKey,
                message: "snapshot \(snap.id.short) (\(rfc3339(millis: snap.time, fractional: false)), device \(snap.device.prefix(7))) is sealed under "
                    + "a data key that was retired before that time: a device removed from the household may have written "
                    + "it, so it is never taken as the latest or kept by retention; restore it only by its ID if you "
                    + "know it is genuine, or remove the file \(snap.id.hex) from the repository's snapshots/",
                snapshot: snap))
        }
        return (readable.sorted { ($0.time, $0.id) < ($1.time, $1.id) }, unreadable.sorted { $0.name < $1.name })
    }

    static func reason(_ error: BackupError) -> UnreadableSnapshot.Reason {
        if error.code == .wrongKey { return .keyNotHeld }
        return error.message.contains("does not match its name") ? .damaged : .malformed
    }

    func loadSnapshot(name: String, chunkList: Bool = true) throws(BackupError) -> Snapshot {
        let file = try target.get(name)
        let id = BlobID(Blake2b.hash(file))
        let short = String((name.split(separator: "/").last ?? "").prefix(8))
        guard id.hex == name.split(separator: "/").last.map(String.init) else {
            throw BackupError(.damaged, "snapshot \(short) is damaged (its content does not match its name); "
                + "`hubsync backup forget --damaged` removes it, and every other snapshot is unaffected")
        }
        guard let (plain, epoch) = key.openWithEpoch(file[...], ad: Label.snapshot) else {
            throw BackupError(.wrongKey, "snapshot \(short) was written under a key this device does not hold: this "
                + "device may have been removed from the household, or its grant of the newest key has not arrived "
                + "yet (let it sync with a member); if no member can read it either, someone outside the household "
                + "wrote it: remove the file \(name) from the repository")
        }
        do {
            var snapshot = try Snapshot.decode(plain, id: id, chunkList: chunkList)
            snapshot.keyEpoch = epoch
            return snapshot
        } catch {
            throw BackupError(.damaged, "snapshot \(short) does not decode (\(error.message)); restore another snapshot")
        }
    }

    /// The snapshot named by `text`: `latest`, a full ID or a unique prefix of one.
    public func snapshot(named text: String) throws(BackupError) -> Snapshot {
        try snapshotAndUnreadable(named: text).snapshot
    }

    /// The snapshot named by `text`, and the snapshots the scan could not read: `latest` is the
    /// newest readable one, and a newer one may be among those (the caller says so).
    public func snapshotAndUnreadable(named text: String) throws(BackupError)
        -> (snapshot: Snapshot, unreadable: [UnreadableSnapshot]) {
        // The snapshot chosen may be forgotten (retention, `forget`) before it is read whole:
        // then the choice is made again, as a scan made after the forget would make it.
        for _ in 0..<3 {
            if let found = try chooseSnapshot(named: text) { return found }
        }
        throw BackupError(.notFound, "the snapshot named \(text) was forgotten each time it was about to be read (another "
            + "process is running `hubsync backup forget` or retention on \(target.description)); try again once it is done")
    }

    /// ``snapshotAndUnreadable(named:)``'s choice, or nil when the snapshot chosen was forgotten
    /// between the scan and its reading.
    private func chooseSnapshot(named text: String) throws(BackupError)
        -> (snapshot: Snapshot, unreadable: [UnreadableSnapshot])? {
        guard !text.isEmpty else {
            throw BackupError(.invalidInput, "no snapshot named: give `latest` or an ID (or its first characters) "
                + "from `hubsync backup list`")
        }
        // Four characters at least, as git asks of an abbreviated commit: one or two would pick
        // a snapshot by a slip of the finger, and a restore --revert writes.
        if text != "latest", text.count < 4 {
            throw BackupError(.invalidInput, "\(text) is too short to name a snapshot: give `latest` or at least 4 "
                + "characters of an ID from `hubsync backup list`")
        }
        // Chosen among summaries, then read again whole: the others' chunk lists are never held.
        let (all, unreadable) = try scanSnapshots(chunkLists: false)
        func whole(_ s: Snapshot) throws(BackupError) -> Snapshot? {
            do { return try loadSnapshot(name: "snapshots/" + s.id.hex) } catch where error.code == .notFound { return nil }
        }
        if text != "latest",
           let bad = unreadable.first(where: { ($0.name.split(separator: "/").last ?? "").hasPrefix(text.lowercased()) }),
           !all.contains(where: { $0.id.hex.hasPrefix(text.lowercased()) }) {
            // Named by its ID, a snapshot under a retired key is given (the caller warns).
            if let snap = bad.snapshot { return try whole(snap).map { ($0, unreadable) } }
            throw BackupError(bad.reason == .keyNotHeld ? .wrongKey : .damaged, bad.message)
        }
        if text == "latest" {
            guard let last = all.last else {
                // Snapshots that are there but cannot be taken as the latest are no "none yet".
                if let first = unreadable.first {
                    throw BackupError(.notFound, "the repository at \(target.description) has no snapshot that can be "
                        + "taken as the latest: \(unreadable.count == 1 ? "its only snapshot" : "each of its \(unreadable.count) snapshots") "
                        + "is passed over (\(first.message)); `hubsync backup list` shows them")
                }
                throw BackupError(.notFound, "the repository at \(target.description) has no snapshots yet; "
                    + "take one with `hubsync backup now`")
            }
            return try whole(last).map { ($0, unreadable) }
        }
        let matches = all.filter { $0.id.hex.hasPrefix(text.lowercased()) }
        guard matches.count == 1 else {
            // A snapshot named that is not there is bad input (exit 2), as a record named that is not.
            throw BackupError(.invalidInput,
                              matches.isEmpty ? "no snapshot \(text) in \(target.description); see `hubsync backup list`"
                                  : "\(text) names \(matches.count) snapshots; give more characters of the ID")
        }
        return try whole(matches[0]).map { ($0, unreadable) }
    }

    func writeSnapshot(_ s: Snapshot) throws(BackupError) -> BlobID {
        let file = Sealed.seal(s.encode(), key: key.data, ad: Label.snapshot)
        let id = BlobID(Blake2b.hash(file))
        try target.put("snapshots/" + id.hex, file, replacing: false)
        return id
    }
}
