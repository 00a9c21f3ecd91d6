public import HubSyncCrypto

/// The writes a replica has seen for one field: per device, the latest clock reading seen.
///
/// A device's writes to one field form a chain at that device, so "seen reading t from device d"
/// implies every earlier write of d to that field was seen too.
public struct CausalContext: Sendable, Hashable {
    /// Entries sorted by device, one per device.
    public private(set) var entries: [(device: DeviceID, time: Timestamp)]

    public init() { entries = [] }

    /// Builds a context from entries in any order; later duplicates keep the greatest time.
    public init(entries list: [(device: DeviceID, time: Timestamp)]) {
        entries = []
        for e in list { add(Stamp(time: e.time, device: e.device)) }
    }

    public func covers(_ stamp: Stamp) -> Bool {
        for e in entries where e.device == stamp.device { return e.time >= stamp.time }
        return false
    }

    public mutating func add(_ stamp: Stamp) {
        for i in entries.indices {
            if entries[i].device == stamp.device {
                if stamp.time > entries[i].time { entries[i].time = stamp.time }
                return
            }
            if stamp.device < entries[i].device {
                entries.insert((stamp.device, stamp.time), at: i)
                return
            }
        }
        entries.append((stamp.device, stamp.time))
    }

    /// The least context that covers both.
    public static func join(_ a: CausalContext, _ b: CausalContext) -> CausalContext {
        if a == b { return a }
        var r = a
        for e in b.entries { r.add(Stamp(time: e.time, device: e.device)) }
        return r
    }

    public static func == (a: CausalContext, b: CausalContext) -> Bool {
        a.entries.count == b.entries.count
            && zip(a.entries, b.entries).allSatisfy { $0.device == $1.device && $0.time == $1.time }
    }

    public func hash(into hasher: inout Hasher) {
        for e in entries {
            hasher.combine(e.device)
            hasher.combine(e.time)
        }
    }
}
