/// Length-prefixed frames: `u32 big-endian payload length ‖ payload` (protocol/SPEC.md 2.1).
///
/// The network layer frames each encrypted message with it; a payload is one sealed message.
public enum FrameCodec {
    /// The largest payload a frame may carry, in bytes (1 MiB).
    public static let maxFrameSize = 1 << 20

    /// The bytes of one frame around `payload`.
    ///
    /// - Precondition: `payload.count <= maxFrameSize`.
    public static func encode(_ payload: [UInt8]) -> [UInt8] {
        precondition(payload.count <= maxFrameSize, "frame payload of \(payload.count) bytes exceeds \(maxFrameSize)")
        return try! header(payloadCount: payload.count) + payload
    }

    /// The four-byte prefix of a frame whose payload has `count` bytes; throws when that is over
    /// ``maxFrameSize`` (the peer would refuse the frame).
    public static func header(payloadCount count: Int) throws(WireError) -> [UInt8] {
        guard count <= maxFrameSize else {
            throw WireError("frame of \(count) bytes exceeds the limit of \(maxFrameSize) bytes")
        }
        return [UInt8(truncatingIfNeeded: count >> 24), UInt8(truncatingIfNeeded: count >> 16),
                UInt8(truncatingIfNeeded: count >> 8), UInt8(truncatingIfNeeded: count)]
    }

    /// The payload length announced by a frame's first four bytes; throws as soon as it is over
    /// ``maxFrameSize``, before the payload arrives, so a peer cannot make the reader buffer an
    /// oversize frame. Every reader of frames (``decode(_:)``, the network pipeline) asks this.
    public static func payloadLength<Prefix: Collection<UInt8>>(announcedBy prefix: Prefix) throws(WireError) -> Int {
        precondition(prefix.count == 4, "a frame's length prefix has 4 bytes")
        let length = prefix.reduce(0) { $0 << 8 | Int($1) }
        guard length <= maxFrameSize else {
            throw WireError("frame of \(length) bytes exceeds the limit of \(maxFrameSize) bytes")
        }
        return length
    }

    /// Removes one complete frame from the front of `buffer` and returns its payload; returns nil,
    /// leaving `buffer` alone, while the frame is incomplete.
    ///
    /// Throws as soon as the length prefix announces more than ``maxFrameSize`` bytes, before they
    /// arrive, so a peer cannot make the reader buffer an oversize frame.
    public static func decode(_ buffer: inout [UInt8]) throws(WireError) -> [UInt8]? {
        guard buffer.count >= 4 else { return nil }
        let length = try payloadLength(announcedBy: buffer[0..<4])
        guard buffer.count - 4 >= length else { return nil }
        let payload = Array(buffer[4..<4 + length])
        buffer.removeFirst(4 + length)
        return payload
    }
}
