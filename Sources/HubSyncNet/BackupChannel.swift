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

    /// Set once the client stopped being trusted: no further request of it is served.
    let revoked = Atomic<Bool>(false)

    /// Whether the client stopped being trusted (removed from the household or from the peers).
    public var isRevoked: Bool { revoked.load(ordering: .acquiring) }

    /// Closes the connection of a client that stopped being trusted; a request that arrives
    /// after this is not served.
    public func revoke() async {
        revoked.store(true, ordering: .releasing)
        await close()
    }

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

    /// A request as the storing peer receives it: whole, or only its announced length when that
    /// is over what the peer would take (its body was read and dropped, never held).
    public enum Request: Sendable {
        case message([UInt8])
        case tooLong(Int)
        /// Taking it whole would put the requests being received on every connection over
        /// ``receiveBudget``: it was read and dropped; the client may send it again later.
        case busy(Int)
    }

    /// The bytes of requests being received, on every backup connection of this process.
    static let receiving = Atomic<Int>(0)
    /// At most this many bytes of requests are held while they arrive, whoever sends them: a
    /// trusted device that opens its connections and sends most of a large request on each
    /// cannot make the storing peer hold more (two packs of the largest size fit).
    public static let receiveBudget = 160 << 20

    /// Reserves `length` bytes of ``receiveBudget``; false when they do not fit.
    static func reserve(_ length: Int) -> Bool {
        var current = receiving.load(ordering: .relaxed)
        while true {
            guard current + length <= receiveBudget else { return false }
            let (exchanged, original) = receiving.compareExchange(expected: current, desired: current + length, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
    }

    /// The next request, or nil when the client closed the connection. A request announced as
    /// longer than `maximum` bytes is read and dropped frame by frame (memory stays at one frame)
    /// and returned as ``Request/tooLong(_:)``, so the peer can answer it and go on.
    public func receiveRequest(maximum: Int) async throws -> Request? {
        guard var message = try await receiveRaw() else { return nil }
        guard message.count >= 4 else { throw NetError(.malformed, "a backup message without its length") }
        let length = message.prefix(4).reduce(0) { $0 << 8 | Int($1) }
        guard length <= Self.maxMessageSize else {
            throw NetError(.malformed, "a backup message of \(length) bytes is over the \(Self.maxMessageSize)-byte limit")
        }
        if length <= maximum, Self.reserve(length) {
            defer { Self.receiving.subtract(length, ordering: .acquiringAndReleasing) }
            message.removeFirst(4)
            message.reserveCapacity(length)
            while message.count < length {
                guard let part = try await receiveRaw() else { return nil }
                touch()
                message += part
            }
            guard message.count == length else { throw NetError(.malformed, "a backup message is longer than it said") }
            touch()
            return .message(message)
        }
        var received = message.count - 4
        while received < length {
            guard let part = try await receiveRaw() else { return nil }
            touch()
            received += part.count
        }
        guard received == length else { throw NetError(.malformed, "a backup message is longer than it said") }
        touch()
        return length > maximum ? .tooLong(length) : .busy(length)
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
