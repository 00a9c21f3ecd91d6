import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import NIOCore

/// The secure channel in the pipeline, after the frame codec (protocol/SPEC.md 2, 4.2): runs the
/// SIGMA handshake with Crypto's state machines, then seals every outbound message and opens
/// every inbound frame with the connection's secretstreams. Writes are sealed in the order the
/// channel takes them, so concurrent writers never interleave inside a stream.
///
/// On the listening side the first frame routes the connection: `0x50 …` is pairing (frames pass
/// through in plaintext, CPace authenticates them), the marker `0x42 0x01` a backup connection,
/// anything else message 1 of a sync handshake. The dialing side sends the backup marker first
/// when that is its purpose. Nothing reaches the next handler before the handshake has ended and
/// `accept` has taken the peer; `established` then gets the purpose and the peer. A handshake
/// that fails or takes longer than the timeout closes the connection.
final class SecureChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Which side of the connection this is.
    enum Role: Sendable { case initiator(ChannelPurpose), responder }
    /// Decides, from the peer's device and the connection's purpose, whether to go on; throws to refuse.
    typealias Accept = @Sendable (DeviceID, ChannelPurpose) async throws -> Void

    enum State {
        /// Waiting for the channel to become active.
        case idle
        /// Responder: the first frame decides what follows.
        case routing
        /// Responder, after the backup marker.
        case awaitingMessage1
        case awaitingMessage2(HandshakeInitiator)
        case awaitingMessage3(HandshakeResponder)
        /// `accept` runs; frames that arrive meanwhile wait in ``pending``.
        case verifying
        /// This side's stream header is sent; the peer's is the next frame.
        case awaitingHeader(DeviceID, receiveKey: SymmetricKey)
        /// Messages are sealed with ``sender`` and opened with ``receiver``.
        case established
        /// Pairing: plaintext frames both ways.
        case passthrough
        /// Ended by an error: every later frame is dropped.
        case failed
    }

    let role: Role
    let identity: SigningKey
    let timeout: TimeAmount
    let accept: Accept
    let counters = TrafficCounters()
    var state = State.idle
    var purpose: ChannelPurpose
    var pending: [ByteBuffer] = []
    var sender: SecretStreamSender?
    var receiver: SecretStreamReceiver?
    var established: EventLoopPromise<AuthenticatedChannel.Parts>?
    var deadline: Scheduled<Void>?
    /// The decoder's frame limit, raised to Core's once the peer has authenticated.
    let frameLimit: FrameLimit
    /// Frames a peer may send while `accept` runs, before the connection is closed.
    static let maxPendingFrames = 16

    init(role: Role, identity: SigningKey, timeout: TimeAmount, accept: @escaping Accept,
         established: EventLoopPromise<AuthenticatedChannel.Parts>, frameLimit: FrameLimit = FrameLimit(FrameCodec.maxFrameSize)) {
        self.frameLimit = frameLimit
        self.role = role
        self.identity = identity
        self.timeout = timeout
        self.accept = accept
        self.established = established
        if case .initiator(let purpose) = role { self.purpose = purpose } else { purpose = .sync }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { begin(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        begin(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        fail(NetError(.handshakeFailed, "the peer closed the connection during the handshake"), context: nil)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        fail(NetError(.closed, "the connection closed during the handshake"), context: nil)
    }

    /// Starts the handshake (the initiator sends the marker and message 1) and its deadline.
    func begin(context: ChannelHandlerContext) {
        guard case .idle = state else { return }
        // Bounds the handshake; a pairing run, whose frames pass through, stays bounded by it.
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            if case .passthrough = state { return context.close(promise: nil) }
            fail(NetError(.timeout, "the handshake did not finish within \(timeout.nanoseconds / 1_000_000_000) s"), context: context)
        }
        switch role {
        case .responder:
            state = .routing
        case .initiator(let purpose):
            if purpose == .backup { write(BackupChannel.marker, context: context) }
            var initiator = HandshakeInitiator(identity: identity)
            write(initiator.start(), context: context)
            state = .awaitingMessage2(initiator)
            context.flush()
        }
    }

    /// Writes one frame as is (handshake messages, stream headers, sealed messages).
    func write(_ bytes: [UInt8], context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        counters.sentBytes.add(bytes.count + 4, ordering: .relaxed)
        context.write(wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: promise)
    }

    /// Ends the handshake with `error` (once): `established` fails and, given a context, the
    /// connection closes.
    func fail(_ error: any Error, context: ChannelHandlerContext?) {
        guard let promise = established else { return }
        state = .failed
        pending = []
        established = nil
        deadline?.cancel()
        promise.fail(error)
        context?.close(promise: nil)
    }

    /// The handshake is over: the next handler gets messages from now on.
    func succeed(peer: DeviceID?) {
        if peer != nil { deadline?.cancel() }
        established?.succeed(AuthenticatedChannel.Parts(purpose: purpose, peer: peer, counters: counters))
        established = nil
    }
}
