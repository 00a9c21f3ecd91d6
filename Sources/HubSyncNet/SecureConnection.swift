public import HubSyncCore
public import HubSyncCrypto
public import NIOCore
import Synchronization

/// Byte counters of one connection, for status.
public final class TrafficCounters: Sendable {
    let sentBytes = Atomic<Int>(0)
    let receivedBytes = Atomic<Int>(0)
    public init() {}
    public var sent: Int { sentBytes.load(ordering: .relaxed) }
    public var received: Int { receivedBytes.load(ordering: .relaxed) }
}

/// The sending half of an authenticated, encrypted connection: seals each message with the
/// connection's secretstream and writes it as one frame. An actor, so pushes and replies from
/// several tasks never interleave inside the stream.
public actor SecureWriter {
    private var sender: SecretStreamSender
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    public let counters: TrafficCounters

    init(key: SymmetricKey, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, counters: TrafficCounters) {
        sender = SecretStreamSender(key: key)
        self.outbound = outbound
        self.counters = counters
    }

    /// The stream header, sent once as the first encrypted-phase frame.
    func sendHeader() async throws {
        try await outbound.write(ByteBuffer(bytes: sender.header))
        counters.sentBytes.add(sender.header.count + 4, ordering: .relaxed)
    }

    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Closes the connection (both directions): the session's reader then ends.
    public func close() { outbound.finish() }

    /// Seals and writes one message. Callers take turns (first come, first served): the actor
    /// is reentrant at the write's await, and a later message sealed before an earlier one is
    /// written would reach the peer out of order and fail authentication there.
    /// Returns the frame's size on the wire.
    @discardableResult
    public func send(_ message: SyncMessage) async throws -> Int {
        try await send(raw: message.encoded())
    }

    /// Sends a message already encoded (``SyncMessage/encodeChanges(encodedStates:lastSequence:isFinal:)``).
    @discardableResult
    public func send(raw plaintext: [UInt8]) async throws -> Int {
        while busy { await withCheckedContinuation { waiting.append($0) } }
        busy = true
        defer {
            busy = false
            if !waiting.isEmpty { waiting.removeFirst().resume() }
        }
        let sealed = sender.seal(plaintext)
        counters.sentBytes.add(sealed.count + 4, ordering: .relaxed)
        try await outbound.write(ByteBuffer(bytes: sealed))
        return sealed.count + 4
    }
}

/// The receiving half: reads frames, opens them, decodes messages. Used by one task only.
public struct SecureReader {
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private var receiver: SecretStreamReceiver
    let counters: TrafficCounters
    /// The size on the wire of the frame the last message came in.
    public private(set) var lastFrameBytes = 0

    init(iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, receiver: SecretStreamReceiver,
         counters: TrafficCounters) {
        self.iterator = iterator
        self.receiver = receiver
        self.counters = counters
    }

    /// The next message, or nil when the peer closed the connection.
    public mutating func receive() async throws -> SyncMessage? {
        guard let plaintext = try await receiveRaw() else { return nil }
        do {
            return try SyncMessage.decode(plaintext)
        } catch {
            throw NetError(.malformed, "malformed message: \(error)")
        }
    }
}

extension SecureReader {
    /// The next frame's plaintext, or nil when the peer closed the connection.
    public mutating func receiveRaw() async throws -> [UInt8]? {
        guard let frame = try await iterator.next() else { return nil }
        lastFrameBytes = frame.readableBytes + 4
        counters.receivedBytes.add(lastFrameBytes, ordering: .relaxed)
        do {
            return try receiver.open(Array(frame.readableBytesView))
        } catch {
            throw NetError(.malformed, "a frame failed authentication (tampered, replayed or out of order): \(error)")
        }
    }
}

/// Runs the SIGMA handshake over a fresh channel and sets up the encrypted streams.
enum SecureHandshake {
    /// Reads one plaintext handshake frame.
    static func readFrame(_ iterator: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) async throws -> [UInt8] {
        guard let frame = try await iterator.next() else {
            throw NetError(.handshakeFailed, "the peer closed the connection during the handshake")
        }
        return Array(frame.readableBytesView)
    }

    /// The dialing side. `accept` decides, from the responder's device ID, whether to go on.
    static func initiate(identity: SigningKey, inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
                         outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
                         accept: (DeviceID) async throws -> Void) async throws -> (DeviceID, SecureReader, SecureWriter) {
        var iterator = inbound.makeAsyncIterator()
        var hs = HandshakeInitiator(identity: identity)
        try await outbound.write(ByteBuffer(bytes: hs.start()))
        let msg2 = try await readFrame(&iterator)
        let step: (peerDevice: DeviceID, finish: [UInt8], result: HandshakeResult)
        do { step = try hs.receive(msg2) } catch {
            throw NetError(.handshakeFailed, "handshake failed: \(error)")
        }
        try await accept(step.peerDevice)
        try await outbound.write(ByteBuffer(bytes: step.finish))
        return try await finish(result: step.result, iterator: iterator, outbound: outbound)
    }

    /// The accepting side. `accept` decides, from the initiator's device ID, whether to go on;
    /// it throws for an untrusted device before any record moves.
    static func respond(identity: SigningKey, inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
                        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
                        accept: (DeviceID) async throws -> Void) async throws -> (DeviceID, SecureReader, SecureWriter) {
        var iterator = inbound.makeAsyncIterator()
        let msg1 = try await readFrame(&iterator)
        return try await respond(identity: identity, message1: msg1, iterator: iterator, outbound: outbound, accept: accept)
    }

    /// The accepting side, once the listener has read message 1 (to tell it from a pairing run).
    static func respond(identity: SigningKey, message1 msg1: [UInt8],
                        iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
                        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
                        accept: (DeviceID) async throws -> Void) async throws -> (DeviceID, SecureReader, SecureWriter) {
        var iterator = iterator
        var hs = HandshakeResponder(identity: identity)
        let msg2: [UInt8]
        do { msg2 = try hs.receive(msg1) } catch { throw NetError(.handshakeFailed, "handshake failed: \(error)") }
        try await outbound.write(ByteBuffer(bytes: msg2))
        let msg3 = try await readFrame(&iterator)
        let result: HandshakeResult
        do { result = try hs.receiveFinish(msg3) } catch { throw NetError(.handshakeFailed, "handshake failed: \(error)") }
        try await accept(result.peerDevice)
        return try await finish(result: result, iterator: iterator, outbound: outbound)
    }

    static func finish(result: HandshakeResult, iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
                       outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws -> (DeviceID, SecureReader, SecureWriter) {
        var iterator = iterator
        let counters = TrafficCounters()
        let writer = SecureWriter(key: result.sendKey, outbound: outbound, counters: counters)
        try await writer.sendHeader()
        let header = try await readFrame(&iterator)
        let receiver: SecretStreamReceiver
        do { receiver = try SecretStreamReceiver(key: result.receiveKey, header: header) } catch {
            throw NetError(.handshakeFailed, "bad stream header: \(error)")
        }
        return (result.peerDevice, SecureReader(iterator: iterator, receiver: receiver, counters: counters), writer)
    }
}
