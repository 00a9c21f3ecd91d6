import Foundation
import HubSyncBase
public import HubSyncCore
public import HubSyncCrypto
public import HubSyncHousehold
public import HubSyncStore
import Synchronization

/// The audit journal of one device (protocol/SPEC.md 8): appends this device's signed entries
/// to its chain in the store, and lists and checks everyone's. The writer of the store (the
/// agent, or a command holding the writer lock) is the only one that appends, so a chain never
/// forks on one store.
public final class AuditJournal: Sendable {
    let store: Store
    let identity: Identity
    let deviceName: @Sendable () -> String?
    /// The last entry of this device's chain in this store, once looked up.
    let head = Mutex<(sequence: Int64, hash: String)?>(nil)

    public init(store: Store, identity: Identity, deviceName: @escaping @Sendable () -> String?) {
        self.store = store
        self.identity = identity
        self.deviceName = deviceName
    }

    /// The name given at `init` (`DATA/device.json`), if any.
    public static func deviceName(in directory: String) -> String? {
        guard let data = FileManager.default.contents(atPath: directory + "/" + DataDirectory.deviceFile),
              let v = try? JSON.parse([UInt8](data)) else { return nil }
        return v.objectValue?["name"]?.stringValue
    }

    /// The chain this store writes: its log epoch, which changes when a store is made anew
    /// (`hubsync repair`, a restore into a new directory), so a rebuilt store never reuses an ID.
    var chain: String { store.logEpoch.isEmpty ? "0" : store.logEpoch }

    /// Signs and stores one entry (blocking: SQLite on this thread); returns it.
    @discardableResult
    public func append(_ action: AuditEntry.Action, subject: [String: String] = [:], detail: String,
                       time: UInt64 = Store.systemClock()) throws -> AuditEntry {
        try head.withLock { head in
            let last = try head ?? lastEntry()
            // Control characters (a file name, a target as typed) are escaped: peers refuse entries holding them.
            let entry = AuditEntry(device: identity.deviceID, key: identity.publicKey,
                                   deviceName: deviceName().map(AuditEntry.cleaned), chain: chain,
                                   sequence: (last?.sequence ?? 0) + 1, previous: last?.hash ?? "",
                                   time: min(time, AuditEntry.maxTime), action: action,
                                   subject: Dictionary(subject.map { (AuditEntry.cleaned($0.key), AuditEntry.cleaned($0.value)) },
                                                       uniquingKeysWith: { a, _ in a }),
                                   detail: AuditEntry.cleaned(detail))
            let record = entry.record(signedWith: identity.signingKey, stamp: Timestamp(millis: time, counter: 0))
            _ = try store.write(.mergeOwn([record]))
            head = (entry.sequence, entry.hash)
            return entry
        }
    }

    /// The last entry of this device's chain in this store, read from its records.
    func lastEntry() throws -> (sequence: Int64, hash: String)? {
        let prefix = AuditEntry.recordID(device: identity.deviceID, chain: chain, sequence: 0).dropLast(12)
        var after = String(prefix), last: (Int64, String)?
        while true {
            let page = try store.read(.records(in: AuditEntry.collection, after: after, limit: 500))
            guard let final = page.last else { break }
            for state in page where state.key.id.hasPrefix(prefix) {
                if let e = try? AuditEntry(verifying: state) { last = (e.sequence, e.hash) }
            }
            guard final.key.id.hasPrefix(prefix), page.count == 500 else { break }
            after = final.key.id
        }
        return last
    }

    /// Every entry the store holds that checks out, oldest first (by time, then ID); `since`
    /// (Unix ms) and `device` narrow it.
    public static func entries(in store: Store, since: UInt64? = nil, device: DeviceID? = nil) throws -> [AuditEntry] {
        var out: [AuditEntry] = [], after: String? = device.map { "\($0)/" }
        while true {
            let page = try store.read(.records(in: AuditEntry.collection, after: after, limit: 500))
            guard let final = page.last else { break }
            for state in page {
                guard let e = try? AuditEntry(verifying: state) else { continue }
                if let device, e.device != device { continue }
                if let since, e.time < since { continue }
                out.append(e)
            }
            if let device, !final.key.id.hasPrefix("\(device)/") { break }
            if page.count < 500 { break }
            after = final.key.id
        }
        return out.sorted { ($0.time, $0.recordID) < ($1.time, $1.recordID) }
    }

    /// What `hubsync audit` and `GET /v1/audit` show: the entries that check out (``entries(in:since:device:)``)
    /// of devices the household has had (members, removed ones, this device), each as JSON with the
    /// name its device signed in its name record (SPEC 4.10), not the name the entry claims; and how
    /// many entries were left out for coming from a device the household never had.
    public static func listing(in store: Store, household: HouseholdSnapshot, me: DeviceID, since: UInt64? = nil,
                               device: DeviceID? = nil) throws -> (entries: [AuditEntry], json: [Value], hidden: Int) {
        let all = try entries(in: store, since: since, device: device)
        let writers = HouseholdRecords.auditWriters(household, me: me)
        let kept = all.filter { writers?.refusal(of: $0) == nil }
        let names = DeviceNames.readNow(from: store)
        return (kept, kept.map { $0.json(verifiedName: names[$0.device]) }, all.count - kept.count)
    }

    /// The audit records among `states` (sent by a peer, or merged from outside) that must not
    /// be stored, with the reason: not a valid entry signed by the device it names, from a
    /// device the household never had, altering an entry this store holds, or breaking its
    /// device's chain with an entry this store (or the same batch) holds.
    public static func refusals(among states: [RecordState], household: HouseholdSnapshot,
                                store: Store) async -> [RecordKey: String] {
        let audit = states.filter { $0.key.collection == AuditEntry.collection }
        guard !audit.isEmpty else { return [:] }
        var refused: [RecordKey: String] = [:]
        // Devices the household has had: members, removed ones, and those a valid add in this
        // very batch names (a new member's first entries may travel with its add).
        var known = Set(household.membership?.members.keys.map { $0 } ?? [])
        known.formUnion(household.membership?.removed ?? [])
        let removedAt = household.membership.map(AuditWriters.removalTimes) ?? [:]
        // Adds not folded into the household yet (they arrived in this batch, or in one just
        // merged): a device added by a known one is known, transitively.
        func learn(from records: [RecordState]) {
            guard let group = household.membership?.groupID else { return }
            let adds = records.compactMap { state -> MembershipStatement? in
                guard state.key.collection == HubCollection.devices.rawValue,
                      let text = state.visibleFields["statement"]?.stringValue, let bytes = Hex.decode(text),
                      let statement = try? MembershipStatement(encoded: bytes), statement.groupID == group,
                      statement.kind == .add, statement.isSignatureValid else { return nil }
                return statement
            }
            var grew = true
            while grew {
                grew = false
                for add in adds where known.contains(add.issuerDevice) && !known.contains(add.subjectDevice) {
                    known.insert(add.subjectDevice)
                    grew = true
                }
            }
        }
        learn(from: states)
        if audit.contains(where: { state in
            (try? AuditEntry(verifying: state)).map { !known.contains($0.device) } ?? false
        }) {
            learn(from: (try? await store.read(.records(in: HubCollection.devices.rawValue))) ?? [])
        }
        var batch: [String: AuditEntry] = [:]
        var checked: [(RecordState, AuditEntry)] = []
        for state in audit {
            do throws(AuditRefusal) {
                let entry = try AuditEntry(verifying: state)
                guard known.contains(entry.device) else {
                    throw AuditRefusal("\(entry.device.short) is not a device of this household")
                }
                if let at = removedAt[entry.device], entry.time > at, !(household.membership?.members.keys.contains(entry.device) ?? false) {
                    throw AuditRefusal("\(entry.device.short) was removed from the household before the time the entry claims")
                }
                checked.append((state, entry))
                batch[state.key.id] = entry
            } catch {
                refused[state.key] = error.reason
            }
        }
        // What the store holds: the same IDs, and each entry's neighbours in its chain.
        var wanted: [RecordKey] = []
        for (_, e) in checked {
            for n in [e.sequence - 1, e.sequence, e.sequence + 1] where n >= 1 {
                wanted.append(RecordKey(collection: AuditEntry.collection, id: AuditEntry.recordID(device: e.device, chain: e.chain, sequence: n)))
            }
        }
        let held = (try? await store.read(.records(wanted))) ?? []
        var stored: [String: AuditEntry] = [:], storedStates: [String: RecordState] = [:]
        for state in held.compactMap({ $0 }) {
            storedStates[state.key.id] = state
            if let e = try? AuditEntry(verifying: state) { stored[state.key.id] = e }
        }
        for (state, e) in checked {
            if let existing = storedStates[state.key.id], existing != state {
                if stored[state.key.id]?.text != e.text || existing.fields["signature"]?.value != state.fields["signature"]?.value {
                    refused[state.key] = "it alters the entry this device holds under \(state.key.id)"
                    continue
                }
            }
            let previousID = AuditEntry.recordID(device: e.device, chain: e.chain, sequence: e.sequence - 1)
            if e.sequence > 1, let previous = batch[previousID] ?? stored[previousID], previous.hash != e.previous {
                refused[state.key] = "it does not follow entry \(e.sequence - 1) of \(e.device.short)'s chain"
                continue
            }
            let nextID = AuditEntry.recordID(device: e.device, chain: e.chain, sequence: e.sequence + 1)
            if let next = batch[nextID] ?? stored[nextID], next.previous != e.hash {
                refused[state.key] = "entry \(e.sequence + 1) of \(e.device.short)'s chain does not follow it"
            }
        }
        return refused
    }
}
