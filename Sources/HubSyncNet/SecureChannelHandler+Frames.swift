import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import NIOCore

/// Frames through the secure channel: the handshake's, then sealed messages.
extension SecureChannelHandler {
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(unwrapInboundIn(data), context: context)
    }

    func receive(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        switch state {
        case .established:
            counters.receivedBytes.add(frame.readableBytes + 4, ordering: .relaxed)
            do {
                // Opened from the frame's bytes straight into the message's buffer.
                let capacity = max(frame.readableBytes - SecretStreamReceiver.overheadByteCount, 1)
                var message = context.channel.allocator.buffer(capacity: capacity)
                _ = try frame.withUnsafeReadableBytes { sealed in
                    try message.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { out in
                        try receiver!.open(sealed, into: UnsafeMutableRawBufferPointer(rebasing: out[..<capacity]))
                    }
                }
                context.fireChannelRead(wrapInboundOut(message))
            } catch {
                // Sticky: the stream cannot go on after a frame that does not authenticate.
                state = .failed
                context.fireErrorCaught(NetError(.malformed,
                    "a frame failed authentication (tampered, replayed or out of order): \(error)", cause: error))
            }
        case .passthrough:
            context.fireChannelRead(wrapInboundOut(frame))
        case .verifying:
            guard case .initiator = role, pending.count < Self.maxPendingFrames else {
                return fail(NetError(.malformed, "more than \(Self.maxPendingFrames) frames before the handshake was accepted"),
                            context: context)
            }
            pending.append(frame)
        case .failed:
            break
        case .idle, .routing, .awaitingMessage1, .awaitingMessage2, .awaitingMessage2V1, .awaitingMessage3, .awaitingMessage4,
             .awaitingHeader:
            counters.receivedBytes.add(frame.readableBytes + 4, ordering: .relaxed)
            do {
                try handshake(Array(frame.readableBytesView), context: context)
            } catch let error as NetError {
                fail(error, context: context)
            } catch {
                fail(NetError(.handshakeFailed, "handshake failed: \(error)", cause: error), context: context)
            }
        }
    }

    /// One handshake frame (protocol/SPEC.md 2.4, 2.5, 4.2).
    func handshake(_ frame: [UInt8], context: ChannelHandlerContext) throws {
        switch state {
        case .routing where frame.first == Pairing.firstByte:
            purpose = .pairing
            state = .passthrough // pairing messages stay small: so does the limit
            frameLimit.maximum = Pairing.maxJoinerMessageByteCount
            succeed(peer: nil)
            context.fireChannelRead(wrapInboundOut(ByteBuffer(bytes: frame)))
        case .routing where frame == BackupChannel.marker:
            purpose = .backup
            state = .awaitingMessage1
            frameLimit.maximum = Handshake.message1ByteCount
        case .routing, .awaitingMessage1:
            var responder = HandshakeResponder(identity: identity)
            let message2 = try responder.receive(frame)
            write(message2, context: context)
            context.flush()
            state = .awaitingMessage3(responder)
            frameLimit.maximum = Handshake.message3ByteCount
        case .awaitingMessage2(var initiator):
            let message3 = try initiator.receive(frame)
            write(message3, context: context)
            context.flush()
            state = .awaitingMessage4(initiator)
            frameLimit.maximum = Handshake.message4ByteCount
        case .awaitingMessage2V1(var initiator):
            let step = try initiator.receive(frame)
            // The responder has authenticated; its stream header follows once it has message 3.
            frameLimit.maximum = FrameCodec.maxFrameSize
            verify(step.peerDevice, result: step.result, finish: step.finish, context: context)
        case .awaitingMessage3(var responder):
            let step = try responder.receiveIdentity(frame)
            // Nothing may come from the initiator until this side has answered with message 4.
            frameLimit.maximum = 0
            verify(step.peerDevice, result: step.result, finish: step.finish, context: context)
        case .awaitingMessage4(var initiator):
            let result = try initiator.receiveFinish(frame)
            // The responder has authenticated: its stream header and first messages may follow at once.
            frameLimit.maximum = FrameCodec.maxFrameSize
            verify(result.peerDevice, result: result, finish: nil, context: context)
        case .awaitingHeader(let peer, let key):
            do { receiver = try SecretStreamReceiver(key: key, header: frame) } catch {
                throw NetError(.handshakeFailed, "the peer's stream header is unusable: \(error)", cause: error)
            }
            state = .established
            frameLimit.maximum = FrameCodec.maxFrameSize
            succeed(peer: peer)
        case .idle, .verifying, .established, .passthrough, .failed:
            break
        }
    }

    /// The largest first frame a listener takes: a pairing message 1 with the longest invite
    /// name; a handshake message 1 (33 bytes) and the backup marker (2) are shorter.
    static let routingFrameLimit = max(Pairing.maxMessage1ByteCount, Handshake.message1ByteCount)

    /// Asks `accept` about the peer; then sends message 4 (responder: only now does it name
    /// itself; a version 1 initiator: message 3, only now does it name itself) and this side's stream header, and handles the frames that arrived meanwhile.
    func verify(_ peer: DeviceID, result: HandshakeResult, finish: [UInt8]?, context: ChannelHandlerContext) {
        state = .verifying
        let decided = context.eventLoop.makePromise(of: Void.self)
        let (accept, purpose) = (self.accept, self.purpose)
        decided.completeWithTask { try await accept(peer, purpose) }
        decided.futureResult.assumeIsolated().whenComplete { [self] outcome in
            guard case .verifying = state else { return } // closed meanwhile
            if case .failure(let error) = outcome { return fail(error, context: context) }
            if let finish { write(finish, context: context) }
            let sender = SecretStreamSender(key: result.sendKey)
            write(sender.header, context: context)
            context.flush()
            self.sender = sender
            state = .awaitingHeader(peer, receiveKey: result.receiveKey)
            if case .responder = role { frameLimit.maximum = SecretStreamSender.headerByteCount }
            let waiting = pending
            pending = []
            for frame in waiting { receive(frame, context: context) }
            if !waiting.isEmpty { context.fireChannelReadComplete() }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .established:
            // Sealed from the message's bytes straight into the frame's buffer.
            let plaintext = unwrapOutboundIn(data)
            let count = plaintext.readableBytes + SecretStreamSender.overheadByteCount
            var sealed = context.channel.allocator.buffer(capacity: count)
            _ = plaintext.withUnsafeReadableBytes { message in
                sealed.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { out in
                    sender!.seal(message, into: UnsafeMutableRawBufferPointer(rebasing: out[..<count]))
                    return count
                }
            }
            counters.sentBytes.add(count + 4, ordering: .relaxed)
            context.write(wrapOutboundOut(sealed), promise: promise)
        case .passthrough:
            counters.sentBytes.add(unwrapOutboundIn(data).readableBytes + 4, ordering: .relaxed)
            context.write(data, promise: promise)
        default:
            promise?.fail(NetError(.unexpectedMessage, "a message was written before the secure channel was established"))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error, context: context)
        context.fireErrorCaught(error)
    }
}
