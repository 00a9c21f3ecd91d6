import Foundation
import HubSyncBase
import HubSyncCore
public import HubSyncCrypto
import HubSyncStore
public import NIOCore
import NIOPosix
import Synchronization

/// The node's listener, and what each connection serves.
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
                    // Bounded: connections that have not authenticated cost memory and a deadline
                    // each; past the bound a new one is closed at once (served, it fails at once).
                    let source = channel.remoteAddress?.ipAddress ?? "?"
                    let admitted = handshakesInProgress.withLock { counts -> Bool in
                        guard counts[source, default: 0] < Self.maxHandshakesPerAddress,
                              counts.values.reduce(0, +) < Self.maxHandshakesInProgress else { return false }
                        counts[source, default: 0] += 1
                        return true
                    }
                    let admission = Admission(expected: nil)
                    let (async, established) = try SecureChannel.configure(
                        channel, role: .responder, identity: identity.signingKey,
                        accept: { [self] device, purpose in try await admit(device, for: purpose, admission) })
                    if admitted {
                        established.whenComplete { [self] _ in
                            handshakesInProgress.withLock { counts in
                                counts[source, default: 1] -= 1
                                if counts[source] == 0 { counts[source] = nil }
                            }
                        }
                    } else {
                        logger.debug("closed a connection: too many handshakes in progress", metadata: ["address": "\(source)"])
                        channel.close(promise: nil)
                    }
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
                                          logger: logger, delegate: self, configuration: sessionConfiguration)
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
