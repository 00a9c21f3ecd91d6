import Foundation
import NIOCore
import Synchronization

/// A backup connection after its handshake: whole messages (`u32 length ‖ body`, split into
/// sealed frames of at most 256 KiB) in both directions (protocol/SPEC.md 5.12).
public final class BackupChannel: @unchecked Sendable { // used by one task: the connection's
    /// The first byte of the marker frame that opens a backup connection (`0x42 ‖ version`).
    public static let firstByte: UInt8 = 0x42
    /// The backup protocol's version, the marker frame's second byte.
    public static let version: UInt8 = 1
    /// What a backup client sends first: `0x42 ‖ version`.
    public static let marker: [UInt8] = [firstByte, version]
    static let partSize = 256 * 1024
    static let maxMessageSize = 64 << 20

    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    /// When a message last went either way (ContinuousClock nanoseconds since the channel opened).
    let opened = ContinuousClock.now
    let lastActivity = Atomic<Int64>(0)

    /// How long no message has gone either way.
    var idle: Duration { (ContinuousClock.now - opened) - .nanoseconds(lastActivity.load(ordering: .relaxed)) }

    func touch() {
        let elapsed = ContinuousClock.now - opened
        lastActivity.store(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000,
                           ordering: .relaxed)
    }

    /// Closes the connection: a pending ``receive()`` then ends.
    public func close() async { outbound.finish() }

    /// A channel over the plaintext messages of a secure channel (``SecureChannelHandler``).
    init(inbound: NIOAsyncChannelInboundStream<ByteBuffer>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.inbound = inbound.makeAsyncIterator()
        self.outbound = outbound
    }

    /// The next frame's plaintext, or nil when the peer closed the connection.
    func receiveRaw() async throws -> [UInt8]? {
        try await inbound.next().map { Array($0.readableBytesView) }
    }

    /// The next message, or nil when the client closed the connection.
    public func receive() async throws -> [UInt8]? {
        guard var message = try await receiveRaw() else { return nil }
        guard message.count >= 4 else { throw NetError(.malformed, "a backup message without its length") }
        let length = message.prefix(4).reduce(0) { $0 << 8 | Int($1) }
        guard length <= Self.maxMessageSize else {
            throw NetError(.malformed, "a backup message of \(length) bytes is over the \(Self.maxMessageSize)-byte limit")
        }
        message.removeFirst(4)
        while message.count < length {
            guard let part = try await receiveRaw() else { return nil }
            touch() // a long message on a slow link is not idle
            message += part
        }
        guard message.count == length else { throw NetError(.malformed, "a backup message is longer than it said") }
        touch()
        return message
    }

    /// Sends one message.
    public func send(_ body: [UInt8]) async throws {
        let count = UInt32(body.count)
        let bytes = [UInt8(count >> 24), UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff)] + body
        var start = 0
        repeat {
            let end = min(bytes.count, start + Self.partSize)
            try await outbound.write(ByteBuffer(bytes: bytes[start..<end]))
            start = end
        } while start < bytes.count
        touch()
    }
}
