import HubSyncCrypto

/// Untrusted devices that tried to connect, for status: the most recent ``capacity`` of them,
/// and a log budget, so a flood of strangers (each a fresh identity) costs neither memory nor
/// log space beyond a bound (protocol/SPEC.md 2.4).
struct RefusedDevices: Sendable {
    /// How many refused devices status lists; an older one makes room for a newer.
    static let capacity = 64
    /// At most one log line per this many milliseconds; it counts the refusals since the last.
    static let logInterval: UInt64 = 10_000

    private(set) var entries: [DeviceID: UInt64] = [:]
    private var lastLog: UInt64?
    private var unlogged = 0

    /// Records that `device` was refused at `now` (Unix ms). Returns how many refusals the log
    /// line to write now covers, or nil when this one waits for a later line.
    mutating func record(_ device: DeviceID, at now: UInt64) -> Int? {
        entries[device] = now
        if entries.count > Self.capacity, let oldest = entries.min(by: { $0.value < $1.value })?.key {
            entries[oldest] = nil
        }
        unlogged += 1
        if let lastLog, now < lastLog + Self.logInterval { return nil }
        lastLog = now
        defer { unlogged = 0 }
        return unlogged
    }

    /// Forgets `device` (it is trusted now).
    mutating func remove(_ device: DeviceID) { entries[device] = nil }
}
