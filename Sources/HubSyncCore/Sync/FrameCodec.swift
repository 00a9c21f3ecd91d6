/// Length-prefixed frames: `u32 big-endian payload length ‖ payload` (protocol/SPEC.md, chapter 3, "Frames").
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
        var out: [UInt8] = []
        out.reserveCapacity(4 + payload.count)
        withUnsafeBytes(of: UInt32(payload.count).bigEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: payload)
        return out
    }

    /// Removes one complete frame from the front of `buffer` and returns its payload; returns nil,
    /// leaving `buffer` alone, while the frame is incomplete.
    ///
    /// Throws as soon as the length prefix announces more than ``maxFrameSize`` bytes, before they
    /// arrive, so a peer cannot make the reader buffer an oversize frame.
    public static func decode(_ buffer: inout [UInt8]) throws(WireError) -> [UInt8]? {
        guard buffer.count >= 4 else { return nil }
        let length = Int(buffer[0]) << 24 | Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3])
        guard length <= maxFrameSize else {
            throw WireError("frame of \(length) bytes exceeds the limit of \(maxFrameSize) bytes")
        }
        guard buffer.count - 4 >= length else { return nil }
        let payload = Array(buffer[4..<4 + length])
        buffer.removeFirst(4 + length)
        return payload
    }
}
