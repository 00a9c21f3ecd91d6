public import HubSyncBase
import HubSyncCore
import NIOCore

/// The largest frame a connection takes now: until the peer has authenticated, exactly what
/// the handshake's next step needs (``SecureChannelHandler`` sets it at each step: 83 bytes for
/// a listener's first frame, 112 for message 3, …); ``FrameCodec/maxFrameSize`` after. Owned by
/// one channel and touched only on its event loop.
final class FrameLimit {
    /// The limit a connection starts with, before its handshake sets the exact one.
    static let beforeAuthentication = 4096
    var maximum: Int
    init(_ maximum: Int) { self.maximum = maximum }
}

/// Splits the TCP byte stream into frames with Core's ``FrameCodec`` (u32 big-endian length,
/// then the payload); a length over the limit closes the connection with an error, as soon as
/// the prefix arrives.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    /// A smaller limit than Core's, while it applies (the listener's connections before the handshake).
    var limit: FrameLimit?

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        guard view.count >= 4 else { return .needMoreData }
        let length: Int
        do { length = try FrameCodec.payloadLength(announcedBy: view.prefix(4)) } catch {
            throw NetError(.malformed, error.message)
        }
        if let limit, length > limit.maximum {
            throw NetError(.malformed, "a frame of \(length) bytes before the handshake has ended (the limit then is "
                + "\(limit.maximum) bytes)")
        }
        guard buffer.readableBytes >= 4 + length else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: length)!))
        return .continue
    }
}

/// Writes each outbound payload as one frame with Core's ``FrameCodec``; a payload over the
/// limit fails the write instead of reaching a peer that would refuse it.
struct FrameEncoder: MessageToByteEncoder {
    typealias OutboundIn = ByteBuffer

    func encode(data: ByteBuffer, out: inout ByteBuffer) throws {
        do { out.writeBytes(try FrameCodec.header(payloadCount: data.readableBytes)) } catch {
            throw NetError(.malformed, error.message)
        }
        out.writeImmutableBuffer(data)
    }
}

/// A networking failure: a code to match on and a message for the log and status.
public struct NetError: CodedError, Sendable, Equatable {
    public var fields: CodedErrorFields
    public init(fields: CodedErrorFields) { self.fields = fields }
}
