public import HubSyncBase
import HubSyncCore
import NIOCore

/// Splits the TCP byte stream into length-prefixed frames (u32 big-endian length, then the
/// payload); a length over the maximum closes the connection with an error.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard length <= UInt32(FrameCodec.maxFrameSize) else {
            throw NetError(.malformed, "frame of \(length) bytes is over the \(FrameCodec.maxFrameSize)-byte limit")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

/// Writes each outbound payload as one length-prefixed frame.
struct FrameEncoder: MessageToByteEncoder {
    typealias OutboundIn = ByteBuffer

    func encode(data: ByteBuffer, out: inout ByteBuffer) throws {
        out.writeInteger(UInt32(data.readableBytes))
        out.writeImmutableBuffer(data)
    }
}

/// A networking failure: a code to match on and a message for the log and status.
public struct NetError: CodedError, Sendable {
    public var fields: CodedErrorFields
    public init(fields: CodedErrorFields) { self.fields = fields }
}
