public import HubSyncCrypto

/// A hybrid logical clock reading: 48 bits of Unix milliseconds and a 16-bit counter, packed so
/// that comparing raw values compares readings.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(millis: UInt64, counter: UInt16) {
        rawValue = (millis & 0xFFFF_FFFF_FFFF) << 16 | UInt64(counter)
    }

    public static let zero = Timestamp(rawValue: 0)

    public var millis: UInt64 { rawValue >> 16 }
    public var counter: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.rawValue < b.rawValue }

    /// `MILLIS:COUNTER`, the text form used in exports and the local API.
    public var description: String { "\(millis):\(counter)" }

    /// Parses the `MILLIS:COUNTER` text form.
    public init?(text: some StringProtocol) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { (48...57).contains($0) } }),
              let ms = UInt64(parts[0]), ms <= 0xFFFF_FFFF_FFFF, let c = UInt16(parts[1]) else {
            return nil
        }
        self.init(millis: ms, counter: c)
    }
}

/// Who wrote a value, and when: unique per write, because each device's clock only moves forward.
public struct Stamp: Sendable, Hashable, Comparable {
    public var time: Timestamp
    public var device: DeviceID

    public init(time: Timestamp, device: DeviceID) {
        self.time = time
        self.device = device
    }

    /// The visible winner among concurrent writes is the greatest stamp: later clock, then device.
    public static func < (a: Stamp, b: Stamp) -> Bool {
        a.time != b.time ? a.time < b.time : a.device < b.device
    }
}

/// A remote clock reading was refused.
public struct ClockSkewError: Error, CustomStringConvertible, Sendable {
    public var remote: Timestamp
    public var localMillis: UInt64
    public var maxDriftMillis: UInt64

    public var aheadMillis: UInt64 { remote.millis &- localMillis }

    public var description: String {
        "a remote clock is \(Double(aheadMillis) / 1000) s ahead of this device (the limit is \(maxDriftMillis / 1000) s); "
            + "check the date and time on both devices"
    }
}

/// The hybrid logical clock itself, as pure state: callers pass the wall time in and persist `last`.
///
/// Readings never go backwards, even when the wall clock does; a remote reading more than
/// `maxDriftMillis` ahead of the wall clock is refused and does not move the clock.
public struct HybridLogicalClock: Sendable {
    public private(set) var last: Timestamp
    public var maxDriftMillis: UInt64

    public static let defaultMaxDriftMillis: UInt64 = 60_000

    public init(last: Timestamp = .zero, maxDriftMillis: UInt64 = defaultMaxDriftMillis) {
        self.last = last
        self.maxDriftMillis = maxDriftMillis
    }

    /// The next reading: later than every reading issued or observed before.
    public mutating func tick(wallMillis: UInt64) -> Timestamp {
        if wallMillis > last.millis {
            last = Timestamp(millis: wallMillis, counter: 0)
        } else if last.counter < UInt16.max {
            last = Timestamp(rawValue: last.rawValue + 1)
        } else {
            last = Timestamp(millis: last.millis + 1, counter: 0)
        }
        return last
    }

    /// Checks a remote reading against the drift bound without moving the clock.
    public func check(_ remote: Timestamp, wallMillis: UInt64) throws(ClockSkewError) {
        if remote.millis > wallMillis &+ maxDriftMillis {
            throw ClockSkewError(remote: remote, localMillis: wallMillis, maxDriftMillis: maxDriftMillis)
        }
    }

    /// Moves the clock up to a reading this device issued before (persisted, or written by another
    /// process on the same store); no drift check, since the reading is our own.
    public mutating func restore(atLeast reading: Timestamp) {
        if reading > last { last = reading }
    }

    /// Takes a remote reading into account, so that later local readings are after it.
    public mutating func observe(_ remote: Timestamp, wallMillis: UInt64) throws(ClockSkewError) {
        try check(remote, wallMillis: wallMillis)
        if remote > last { last = remote }
    }
}
