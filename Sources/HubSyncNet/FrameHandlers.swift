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
public struct NetError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public static let malformed = Code(name: "malformed")
        public static let untrusted = Code(name: "not trusted")
        public static let handshakeFailed = Code(name: "handshake failed")
        public static let clockSkew = Code(name: "clock skew")
        public static let closed = Code(name: "closed")
        public static let timeout = Code(name: "timeout")
        public static let unexpectedPeer = Code(name: "unexpected peer")
        public static let incompatible = Code(name: "incompatible")
        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
