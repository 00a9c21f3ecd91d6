import HubSyncBase
public import HubSyncCrypto
public import NIOCore
import NIOPosix
import Synchronization

/// What a connection to a device's listener is for; the dialing side says so with its first
/// frame (protocol/SPEC.md 4.2): pairing `0x50 …`, backup the marker `0x42 0x01`, sync neither.
public enum ChannelPurpose: Sendable, Equatable, CustomStringConvertible {
    case sync, backup, pairing

    public var description: String {
        switch self {
        case .sync: "sync"
        case .backup: "backup"
        case .pairing: "pairing"
        }
    }
}

/// Byte counters of one connection, for status.
public final class TrafficCounters: Sendable {
    let sentBytes = Atomic<Int>(0)
    let receivedBytes = Atomic<Int>(0)
    public init() {}
    public var sent: Int { sentBytes.load(ordering: .relaxed) }
    public var received: Int { receivedBytes.load(ordering: .relaxed) }
}

/// A connection past its handshake: its purpose, the authenticated peer, and the channel,
/// whose messages are plaintexts (the pipeline's ``SecureChannelHandler`` seals and opens them).
public struct AuthenticatedChannel: Sendable {
    public let purpose: ChannelPurpose
    /// The device at the other end; nil for pairing, which CPace authenticates over plaintext.
    public let peer: DeviceID?
    public let counters: TrafficCounters
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
}

/// Opens connections through the one pipeline every connection uses: the frame codec (with
/// Core's limits), then ``SecureChannelHandler`` (the handshake, then secretstream sealing and
/// opening), then NIO's async channel.
public enum SecureChannel {
    /// How long a connection may take to finish its handshake before it is closed.
    static let handshakeTimeout: TimeAmount = .seconds(10)

    /// The pipeline of a connection, for either side; returns the async channel and what the
    /// handshake establishes.
    static func configure(_ channel: any Channel, role: SecureChannelHandler.Role, version: HandshakeVersion = .v2,
                          identity: SigningKey, accept: @escaping SecureChannelHandler.Accept)
        throws -> (NIOAsyncChannel<ByteBuffer, ByteBuffer>, EventLoopFuture<AuthenticatedChannel.Parts>) {
        let established = channel.eventLoop.makePromise(of: AuthenticatedChannel.Parts.self)
        let limit = FrameLimit(FrameLimit.beforeAuthentication)
        let handler = SecureChannelHandler(role: role, version: version, identity: identity, timeout: handshakeTimeout,
                                           accept: accept, established: established, frameLimit: limit)
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(limit: limit)))
        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
        try channel.pipeline.syncOperations.addHandler(handler)
        let async = try wrap(channel, configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8)))
        return (async, established.futureResult)
    }

    /// Wraps a channel for async use, closing it if the wrapper is dropped before
    /// `executeThenClose` runs: at shutdown the listener drops connections it accepted but never
    /// served, and a dial can be cancelled between connecting and serving. NIO's
    /// `init(wrappingChannelSynchronously:)` stops the process then ("Deinited NIOAsyncWriter
    /// without calling finish()", seen on SIGTERM), so this uses the initialiser that closes on
    /// deinit, which NIO marks deprecated only to steer towards explicit teardown.
    static func wrap(_ channel: any Channel,
                     configuration: NIOAsyncChannel<ByteBuffer, ByteBuffer>.Configuration = .init()) throws
        -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(synchronouslyWrapping: channel, configuration: configuration)
    }

    /// Opens an authenticated channel to the device at `address` (HOST:PORT) for `purpose`
    /// (sync or backup), as `identity`. `accept` decides, from the device that answered,
    /// whether to go on; it throws to refuse. In version 2 this side has identified itself by then
    /// and the device answered only because it trusts this one; in version 1 `accept` runs before
    /// this side reveals its identity.
    ///
    /// Version 2 first; a device that closes the connection at message 1 with nothing sent back
    /// (what release v0.1.0 does with a version it does not know) gets one more connection, in
    /// version 1 (protocol/SPEC.md 2.4.2). Nothing is remembered between calls.
    ///
    /// - Throws: ``NetError``: `malformed` for an unusable address, `handshakeFailed`,
    ///   `timeout`, `closed`, or what `accept` threw; NIO's errors when nothing answers.
    public static func open(to address: String, for purpose: ChannelPurpose, identity: SigningKey,
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                            accept: @escaping @Sendable (DeviceID) async throws -> Void) async throws -> AuthenticatedChannel {
        do {
            return try await open(to: address, for: purpose, version: .v2, identity: identity, group: group, accept: accept)
        } catch is ClosedAtMessage1 {
            do {
                return try await open(to: address, for: purpose, version: .v1, identity: identity, group: group, accept: accept)
            } catch let error as NetError where error.code == .handshakeFailed {
                throw NetError(.handshakeFailed, "the device at \(address) closed the connection at handshake message 1 "
                    + "of version 2, and version 1 failed too (\(error.message)); it may be busy, or run an "
                    + "incompatible HubSync: update the older device", cause: error)
            }
        }
    }

    /// The device at the other end closed the connection after version 2's message 1 without
    /// sending anything: what release v0.1.0 does (SPEC 2.4.2). ``open(to:for:identity:group:accept:)``
    /// then tries version 1 once.
    struct ClosedAtMessage1: Error, CustomStringConvertible {
        var description: String { "the peer closed the connection at handshake message 1 without answering" }
    }

    /// Opens an authenticated channel in one handshake version, with no fallback.
    static func open(to address: String, for purpose: ChannelPurpose, version: HandshakeVersion, identity: SigningKey,
                     group: any EventLoopGroup,
                     accept: @escaping @Sendable (DeviceID) async throws -> Void) async throws -> AuthenticatedChannel {
        precondition(purpose != .pairing, "pairing runs over plaintext frames: use SyncNode.connect")
        let (channel, established) = try await connect(to: address, group: group) { channel in
            try configure(channel, role: .initiator(purpose), version: version, identity: identity,
                          accept: { device, _ in try await accept(device) })
        }
        do {
            let parts = try await handshake(established, on: channel)
            return AuthenticatedChannel(purpose: purpose, peer: parts.peer, counters: parts.counters, channel: channel)
        } catch {
            await discard(channel)
            throw error
        }
    }

    /// Waits for the handshake on `channel` to end; cancelling the wait closes the connection.
    static func handshake(_ established: EventLoopFuture<AuthenticatedChannel.Parts>,
                          on channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async throws -> AuthenticatedChannel.Parts {
        let raw = channel.channel
        return try await withTaskCancellationHandler {
            try await established.get()
        } onCancel: {
            raw.close(promise: nil)
        }
    }

    /// Closes a channel that will not be used; NIO requires its writer to be finished first.
    static func discard(_ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        try? await channel.executeThenClose { _, _ in }
    }

    /// Opens a TCP connection to `address` (HOST:PORT) with the pipeline `configure` builds,
    /// giving up after 5 s.
    static func connect<Output: Sendable>(to address: String, group: any EventLoopGroup,
                                          configure: @escaping @Sendable (any Channel) throws -> Output) async throws -> Output {
        guard let (host, port) = SyncNode.split(address) else {
            throw NetError(.malformed, "peer address \(address) is not HOST:PORT")
        }
        return try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try configure(channel) }
            }
    }
}

extension AuthenticatedChannel {
    /// What the handshake establishes, before the channel is wrapped.
    struct Parts: Sendable {
        var purpose: ChannelPurpose
        var peer: DeviceID?
        var counters: TrafficCounters
    }

    /// Runs `body` with the channel's inbound messages and outbound writer, then closes it.
    public func executeThenClose<Result: Sendable>(
        _ body: (NIOAsyncChannelInboundStream<ByteBuffer>, NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws -> Result
    ) async throws -> Result {
        try await channel.executeThenClose(body)
    }

    /// Closes the connection without using it.
    public func close() async { await SecureChannel.discard(channel) }
}
