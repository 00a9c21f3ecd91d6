import Foundation
public import HubSyncCrypto

/// The blinded group tag an agent puts in its mDNS advert (TXT `g=`): members recognise each
/// other's adverts, outsiders cannot link adverts across epochs (protocol/SPEC.md, Discovery).
///
/// tag = hex of the first 16 bytes of BLAKE2b-256 keyed with the group key over
/// `"hubsync-tag" ‖ epoch` (the epoch number as a big-endian UInt64).
public enum GroupTag {
    /// Seconds in one epoch: a day, so the tag changes at 00:00 UTC.
    public static let defaultEpochSeconds: UInt64 = 86_400

    /// The epoch number at `date`: whole epochs since the Unix epoch.
    public static func epoch(at date: Date = Date(), epochSeconds: UInt64 = defaultEpochSeconds) -> UInt64 {
        UInt64(max(0, date.timeIntervalSince1970)) / max(1, epochSeconds)
    }

    /// The tag for one epoch: 32 lowercase hex digits.
    public static func tag(groupKey: SymmetricKey, epoch: UInt64) -> String {
        var input = Array("hubsync-tag".utf8)
        withUnsafeBytes(of: epoch.bigEndian) { input.append(contentsOf: $0) }
        return Hex.encode(Blake2b.hash(input, outputLength: 32, key: groupKey).prefix(16))
    }

    /// Whether `tag` belongs to the group at `date`; the neighbouring epochs count too, so two
    /// devices whose clocks straddle midnight still recognise each other.
    public static func matches(_ tag: String, groupKey: SymmetricKey, at date: Date = Date(),
                               epochSeconds: UInt64 = defaultEpochSeconds) -> Bool {
        let now = epoch(at: date, epochSeconds: epochSeconds)
        let candidates = [now, now &+ 1] + (now > 0 ? [now - 1] : [])
        return candidates.contains { Self.tag(groupKey: groupKey, epoch: $0) == tag.lowercased() }
    }
}
