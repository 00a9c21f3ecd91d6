import Foundation
import HubSyncBase
import HubSyncCore
public import HubSyncCrypto
import HubSyncStore
public import NIOCore
import NIOPosix
import Synchronization

/// The node's connections: the listener, the dialers, and what each connection serves.
extension SyncNode {
    // MARK: listening

    /// Binds the listener and serves connections until cancelled. `ready` gets the bound address.
    ///
    /// Every connection gets the one pipeline (``SecureChannel``); its first frame routes it to
    /// a sync session, a backup connection or a pairing run (protocol/SPEC.md 4.2).
    public func listen(host: String, port: Int, ready: @Sendable (SocketAddress) -> Void) async throws {
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let admission = Admission(expected: nil)
                    let (async, established) = try SecureChannel.configure(
                        channel, role: .responder, identity: identity.signingKey,
                        accept: { [self] device, purpose in try await admit(device, for: purpose, admission) })
                    return Accepted(channel: async, established: established, admission: admission)
                }
            }
        let address = server.channel.localAddress!
        listenAddress.withLock { $0 = address }
        listening.signal()
        ready(address)
        logger.info("listening for peers", metadata: ["address": "\(address)"])
        try await withThrowingDiscardingTaskGroup { tasks in
            try await server.executeThenClose { inbound in
                for try await connection in inbound {
                    tasks.addTask { await self.serve(connection) }
                }
            }
        }
    }

    /// A connection the listener accepted, before its handshake has ended.
    struct Accepted: Sendable {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        let established: EventLoopFuture<AuthenticatedChannel.Parts>
        let admission: Admission
    }

    /// What the trust check learned about one connection's peer.
    final class Admission: Sendable {
        let expected: DeviceID?
        let seen: Mutex<DeviceID?>
        let trusted = Mutex(false)
        init(expected: DeviceID?) {
            self.expected = expected
            seen = Mutex(expected)
        }
    }

    /// Decides whether a device that completed the handshake may go on: the one dialed, and
    /// for sync a trusted one (backup connections answer an untrusted device in their hello).
    func admit(_ device: DeviceID, for purpose: ChannelPurpose, _ admission: Admission) async throws {
        admission.seen.withLock { $0 = device }
        if let expected = admission.expected, device != expected {
            throw NetError(.unexpectedPeer, "expected device \(expected.short) at that address, found \(device.short)")
        }
        guard purpose == .sync else { return }
        let trusted = try await store.read(.isTrusted(device))
        guard trusted else {
            refused.withLock { $0[device] = UInt64(Date().timeIntervalSince1970 * 1000) }
            logger.warning("refused a device that is not trusted", metadata: ["peer.id": "\(device)"])
            throw NetError(.untrusted, "device \(device) is not trusted; add it with `hubsync peers add \(device)`")
        }
        admission.trusted.withLock { $0 = true }
        refused.withLock { _ = $0.removeValue(forKey: device) } // trusted since
    }

    // MARK: dialing

    /// Keeps one peer connected: dials its address, and after a failure or disconnect dials again
    /// with backoff (0.25 s doubling to 30 s), until cancelled.
    public func maintain(peer: DeviceID, address: String) async {
        let changes = sessionChanges.subscribe()
        defer { sessionChanges.unsubscribe(changes) }
        var delay: Duration = .milliseconds(250)
        while !Task.isCancelled {
            if sessions.withLock({ $0[peer] != nil }) {
                // Connected (maybe by the peer dialing us): wait until a session ends.
                guard await changes.wait() else { return }
                continue
            }
            let started = ContinuousClock.now
            do {
                try await dial(peer: peer, address: address)
            } catch {
                setStatus(peer) { $0.connected = false; $0.reason = Self.describe(error, address: address) }
                logger.debug("dial failed", metadata: ["peer.id": "\(peer.short)", "error": "\(error)"])
            }
            if ContinuousClock.now - started > .seconds(10) { delay = .milliseconds(250) }
            // Back off, unless the peer connects to us meanwhile (then wait for its session's end).
            var outcome = WakeSignal.Outcome.signalled
            let retry = ContinuousClock.now + delay
            while outcome == .signalled, sessions.withLock({ $0[peer] == nil }) {
                outcome = await changes.wait(until: retry)
            }
            if outcome == .ended { return }
            delay = min(delay * 2, .seconds(30))
        }
    }

    /// Opens a framed TCP connection to `address` (HOST:PORT) without the secure channel, for
    /// pairing (CPace authenticates its plaintext frames); giving up after 5 s.
    static func connect(to address: String, group: any EventLoopGroup) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await SecureChannel.connect(to: address, group: group) { channel in
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
            try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
            return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
        }
    }

    func dial(peer: DeviceID, address: String) async throws {
        let admission = Admission(expected: peer)
        let channel = try await SecureChannel.open(to: address, for: .sync, identity: identity.signingKey, group: group) {
            [self] device in try await admit(device, for: .sync, admission)
        }
        await serveSync(channel, initiator: true)
    }

    /// Dials an address that discovery found, whoever answers there: the handshake refuses an
    /// untrusted device; a trusted one gets this address recorded as its last-known address (so
    /// it is dialled again without mDNS) and a session until it ends. Returns the device that
    /// answered and whether it was trusted; throws when nothing could be reached.
    public func dial(discovered address: String) async throws -> (device: DeviceID?, trusted: Bool) {
        let admission = Admission(expected: nil)
        do {
            let channel = try await SecureChannel.open(to: address, for: .sync, identity: identity.signingKey, group: group) {
                [self] device in try await admit(device, for: .sync, admission)
            }
            await serveSync(channel, initiator: true, discoveredAt: address)
        } catch let error as NetError {
            ended(admission, error)
        }
        return (admission.seen.withLock { $0 }, admission.trusted.withLock { $0 })
    }

    /// Splits `HOST:PORT` (`[v6]:PORT` too) into its parts.
    public static func split(_ address: String) -> (String, Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    static func describe(_ error: any Error, address: String) -> String {
        if let e = error as? NetError {
            switch e.code {
            case .untrusted: return "refused: not trusted (\(e.message))"
            case .clockSkew: return "clock skew: \(e.message)"
            case .handshakeFailed: return "handshake failed: \(e.message)"
            default: return e.message
            }
        }
        return "unreachable at \(address): \(error)"
    }

    // MARK: serving

    /// Serves an accepted connection once its handshake has ended, by its purpose.
    func serve(_ accepted: Accepted) async {
        let parts: AuthenticatedChannel.Parts
        do { parts = try await SecureChannel.handshake(accepted.established, on: accepted.channel) } catch {
            await SecureChannel.discard(accepted.channel)
            return ended(accepted.admission, error)
        }
        let channel = AuthenticatedChannel(purpose: parts.purpose, peer: parts.peer, counters: parts.counters,
                                           channel: accepted.channel)
        switch parts.purpose {
        case .sync: await serveSync(channel, initiator: false)
        case .backup: await serveBackup(channel)
        case .pairing: await servePairing(channel)
        }
    }

    /// Records why a connection with a known device ended, for status and the log.
    func ended(_ admission: Admission, _ error: any Error) {
        let peer = admission.seen.withLock { $0 }
        if let peer { setStatus(peer) { $0.connected = false; $0.reason = Self.describe(error, address: "") } }
        logger.info("connection ended", metadata: ["peer.id": "\(peer?.short ?? "?")", "reason": "\(error)"])
    }

    /// A sync session on an authenticated channel, until it ends.
    /// `discoveredAt`: the address discovery found this peer at, recorded as its address.
    func serveSync(_ channel: AuthenticatedChannel, initiator: Bool, discoveredAt: String? = nil) async {
        guard let peer = channel.peer else { return await channel.close() }
        do {
            try await channel.executeThenClose { inbound, outbound in
                if let discoveredAt, try await store.read(.peer(peer))?.address != discoveredAt {
                    _ = try await store.write(.addPeer(peer, address: discoveredAt))
                    logger.info("recorded a discovered address", metadata: ["peer.id": "\(peer.short)", "address": "\(discoveredAt)"])
                }
                let session = SyncSession(peer: peer, isInitiator: initiator, store: store, counters: channel.counters,
                                          logger: logger, delegate: self)
                guard register(session) else {
                    try? await outbound.write(ByteBuffer(bytes: SyncMessage.goodbye(reason: "duplicate connection").encoded()))
                    return
                }
                defer { unregister(session) }
                logger.info("peer connected", metadata: ["peer.id": "\(peer.short)", "initiator": "\(initiator)"])
                try await session.run(inbound: inbound, outbound: outbound)
            }
        } catch {
            ended(Admission(expected: peer), error)
        }
    }

    /// A pairing run (protocol/SPEC.md 4.2): plaintext frames, served by the pairing desk.
    func servePairing(_ channel: AuthenticatedChannel) async {
        do {
            try await channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                guard let first = try await iterator.next() else { return }
                guard let desk = pairingDesk.withLock({ $0 }) else {
                    try await outbound.write(ByteBuffer(bytes: PairingInviter.refusal(.unknownInvite)))
                    return
                }
                try await desk.serve(first: Array(first.readableBytesView), iterator: &iterator, outbound: outbound,
                                     remoteHost: channel.channel.channel.remoteAddress?.ipAddress)
            }
        } catch {
            logger.info("pairing connection ended", metadata: ["reason": "\(error)"])
        }
    }
}
