import HubSyncBase
extension SyncMessage {
    /// The bytes of a `changes` message built from states already in canonical encoding (as the
    /// store keeps them), so a sender streams its log without decoding and re-encoding each
    /// record. Identical to `SyncMessage.changes(...).encoded()` for the same states.
    public static func encodeChanges(encodedStates: [[UInt8]], lastSequence: Int64, isFinal: Bool) -> [UInt8] {
        var w = ByteWriter()
        w.bytes.reserveCapacity(14 + encodedStates.reduce(0) { $0 + 4 + $1.count })
        w.u8(Tag.changes.rawValue)
        w.u64(UInt64(bitPattern: lastSequence))
        w.u8(isFinal ? 1 : 0)
        w.u32(UInt32(encodedStates.count))
        for s in encodedStates { w.blob(s) }
        return w.bytes
    }
}
