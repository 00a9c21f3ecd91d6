import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import NIOCore

/// The secure channel in the pipeline, after the frame codec (protocol/SPEC.md 2, 4.2): runs the
/// SIGMA-R handshake with Crypto's state machines (a listener names itself only to a device it
/// trusts), then seals every outbound message and opens every inbound frame with the
/// connection's secretstreams. Until the peer has authenticated, the decoder's ``FrameLimit``
/// admits only the next handshake message's size. Writes are sealed in the order the
/// channel takes them, so concurrent writers never interleave inside a stream.
///
/// On the listening side the first frame routes the connection: `0x50 …` is pairing (frames pass
/// through in plaintext, CPace authenticates them), the marker `0x42 0x01` a backup connection,
/// anything else message 1 of a sync handshake. The dialing side sends the backup marker first
/// when that is its purpose. Nothing reaches the next handler before the handshake has ended and
/// `accept` has taken the peer; `established` then gets the purpose and the peer. A handshake
/// that fails or takes longer than the timeout closes the connection.
///
/// An initiator made with `version: .v1` speaks release v0.1.0's handshake instead (SPEC 2.4.2):
/// the responder names itself in message 2, `accept` takes it, and only then does this side send
/// its identity in message 3. A listener speaks only version 2.
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
        /// Initiator: message 1 is sent; the responder's ephemeral key comes next.
        case awaitingMessage2(HandshakeInitiator)
        /// Initiator talking to a version 1 device (SPEC 2.4.2): version 1's message 1 is sent; the
        /// responder's ephemeral key and sealed identity come next.
        case awaitingMessage2V1(HandshakeInitiatorV1)
        /// Responder: message 2 is sent; the initiator's sealed identity comes next.
        case awaitingMessage3(HandshakeResponder)
        /// Initiator: message 3 (this side's identity) is sent; the responder's comes next, if it trusts this device.
        case awaitingMessage4(HandshakeInitiator)
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
    /// The handshake version an initiator speaks: 2, or 1 to a device that speaks only that.
    let version: HandshakeVersion
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
    /// Frames a responder may send while the initiator's `accept` runs, before the connection is
    /// closed. An initiator has nothing to send while the responder's `accept` runs.
    static let maxPendingFrames = 16

    init(role: Role, version: HandshakeVersion = .v2, identity: SigningKey, timeout: TimeAmount, accept: @escaping Accept,
         established: EventLoopPromise<AuthenticatedChannel.Parts>, frameLimit: FrameLimit = FrameLimit(FrameCodec.maxFrameSize)) {
        self.frameLimit = frameLimit
        self.role = role
        self.version = version
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
        if case .awaitingMessage2 = state, counters.received == 0 {
            // What a version 1 device does with version 2's message 1; the dialer may retry in version 1.
            fail(SecureChannel.ClosedAtMessage1(), context: nil)
        } else if case .awaitingHeader = state, version == .v1, case .initiator = role {
            // A version 1 responder that does not trust this device closes once it has message 3.
            fail(NetError(.untrusted, "the version 1 device there closed the connection once this device had identified "
                + "itself: this device is not trusted there; add it there with `hubsync peers add`"), context: nil)
        } else if case .awaitingMessage4 = state {
            // A responder that does not trust this device closes instead of naming itself.
            fail(NetError(.untrusted, "the device there closed the connection once this device had identified itself: "
                + "this device is not trusted there (or that is not the device expected); pair the devices first "
                + "(`hubsync pair`), or add this device there with `hubsync peers add`"), context: nil)
        } else {
            fail(NetError(.handshakeFailed, "the peer closed the connection during the handshake"), context: nil)
        }
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
            frameLimit.maximum = Self.routingFrameLimit
        case .initiator(let purpose):
            if purpose == .backup { write(BackupChannel.marker, context: context) }
            switch version {
            case .v2:
                var initiator = HandshakeInitiator(identity: identity)
                write(initiator.start(), context: context)
                state = .awaitingMessage2(initiator)
                frameLimit.maximum = Handshake.message2ByteCount
            case .v1:
                var initiator = HandshakeInitiatorV1(identity: identity)
                write(initiator.start(), context: context)
                state = .awaitingMessage2V1(initiator)
                frameLimit.maximum = HandshakeInitiatorV1.message2ByteCount
            }
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

/// The session handshake versions an initiator can speak (protocol/SPEC.md 2.2, 2.4.2).
enum HandshakeVersion: Sendable, Equatable {
    /// SIGMA-R: the responder names itself only to an initiator it trusts. Listeners speak only this.
    case v2
    /// Release v0.1.0's SIGMA-I, spoken only as initiator to a device that speaks nothing newer.
    case v1
}
