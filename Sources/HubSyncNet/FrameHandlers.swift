public import HubSyncBase
import HubSyncCore
import NIOCore

/// Splits the TCP byte stream into frames with Core's ``FrameCodec`` (u32 big-endian length,
/// then the payload); a length over the limit closes the connection with an error.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        guard view.count >= 4 else { return .needMoreData }
        let length: Int
        do { length = try FrameCodec.payloadLength(announcedBy: view.prefix(4)) } catch {
            throw NetError(.malformed, error.message)
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
