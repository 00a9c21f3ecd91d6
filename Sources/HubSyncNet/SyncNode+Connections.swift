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
            // Accept backpressure: a burst of connections is taken a few at a time, so the loop
            // also serves the connections it already has between them.
            .serverChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { [self] channel in
                channel.eventLoop.makeCompletedFuture { () -> Accepted? in
                    // Bounded: connections that have not authenticated cost memory and a deadline
                    // each; past the bound a new one is closed at once, before it gets a pipeline
                    // or a task (a refusal costs the accept and the close, nothing more).
                    let source = channel.remoteAddress?.ipAddress ?? "?"
                    let admitted = handshakesInProgress.withLock { counts -> Bool in
                        guard counts[source, default: 0] < Self.maxHandshakesPerAddress,
                              counts.values.reduce(0, +) < Self.maxHandshakesInProgress else { return false }
                        counts[source, default: 0] += 1
                        return true
                    }
                    guard admitted else {
                        logger.debug("closed a connection: too many handshakes in progress", metadata: ["address": "\(source)"])
                        channel.close(promise: nil)
                        return nil
                    }
                    let release: @Sendable () -> Void = { [self] in
                        handshakesInProgress.withLock { counts in
                            counts[source, default: 1] -= 1
                            if counts[source] == 0 { counts[source] = nil }
                        }
                    }
                    let admission = Admission(expected: nil)
                    let configured: (NIOAsyncChannel<ByteBuffer, ByteBuffer>, EventLoopFuture<AuthenticatedChannel.Parts>)
                    do {
                        configured = try SecureChannel.configure(
                            channel, role: .responder, identity: identity.signingKey,
                            accept: { [self] device, purpose in try await admit(device, for: purpose, admission) })
                    } catch {
                        release()
                        throw error
                    }
                    let (async, established) = configured
                    // A pairing run is unauthenticated until its end: it holds its place until it closes.
                    established.whenComplete { result in
                        if case .success(let parts) = result, parts.purpose == .pairing {
                            channel.closeFuture.whenComplete { _ in release() }
                        } else {
                            release()
                        }
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
                    guard let connection else { continue } // refused at the door, already closed
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
    /// a trusted one. A listener decides before it names itself (message 4), so a device it
    /// does not trust never learns which device it reached (protocol/SPEC.md 2.4).
    func admit(_ device: DeviceID, for purpose: ChannelPurpose, _ admission: Admission) async throws {
        admission.seen.withLock { $0 = device }
        if let expected = admission.expected, device != expected {
            throw NetError(.unexpectedPeer, "expected device \(expected.short) at that address, found \(device.short)")
        }
        guard purpose == .sync || purpose == .backup else { return }
        let trusted = try await store.read(.isTrusted(device))
        guard trusted else {
            noteRefused(device, "refused a device that is not trusted")
            throw NetError(.untrusted, "device \(device) is not trusted; add it with `hubsync peers add \(device)`")
        }
        admission.trusted.withLock { $0 = true }
        refused.withLock { $0.remove(device) } // trusted since
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
    /// Only a device this node dialed or trusts gets a status entry and a log line: a stranger's
    /// (or a handshake that failed before anyone identified) costs neither memory nor log space,
    /// beyond the bounded refused list (protocol/SPEC.md 2.1).
    func ended(_ admission: Admission, _ error: any Error) {
        let peer = admission.seen.withLock { $0 }
        let known = admission.expected != nil || admission.trusted.withLock { $0 }
        guard known else {
            return logger.debug("connection ended", metadata: ["peer.id": "\(peer?.short ?? "?")", "reason": "\(error)"])
        }
        let trouble = Self.isStoreTrouble(error)
        let clockAdvice = clockSkewAdvice(error)
        if let peer {
            setStatus(peer) {
                $0.connected = false; $0.reason = Self.describe(error, address: nil, clockAdvice: clockAdvice)
                $0.storeTrouble = trouble
            }
        }
        let metadata = peerMetadata(peer).merging(["reason": "\(NetError.describe(error))"]) { $1 }
        if trouble {
            logger.warning("connection ended on a store failure", metadata: metadata)
        } else if (error as? NetError)?.code == .clockSkew {
            // Nothing syncs with this peer until a clock is set: worth more than an info line.
            var withAdvice = metadata
            if let clockAdvice { withAdvice["advice"] = "\(clockAdvice)" }
            logger.warning("connection ended: clock skew", metadata: withAdvice)
        } else {
            logger.info("connection ended", metadata: metadata)
        }
    }

    /// A sync session on an authenticated channel, until it ends.
    /// `discoveredAt`: the address discovery found this peer at, recorded as its address.
    func serveSync(_ channel: AuthenticatedChannel, initiator: Bool, discoveredAt: String? = nil) async {
        guard let peer = channel.peer else { return await channel.close() }
        do {
            try await channel.executeThenClose { inbound, outbound in
                if let discoveredAt, try await store.read(.peer(peer))?.address != discoveredAt {
                    _ = try await store.write(.addPeer(peer, address: discoveredAt))
                    logger.info("recorded a discovered address", metadata: peerMetadata(peer).merging(["address": "\(discoveredAt)"]) { $1 })
                }
                // The session's lines (a record not merged, a refused batch) name the peer too.
                var sessionLogger = logger
                for (key, value) in peerMetadata(peer) { sessionLogger[metadataKey: key] = value }
                let session = SyncSession(peer: peer, isInitiator: initiator, store: store, counters: channel.counters,
                                          logger: sessionLogger, delegate: self, configuration: sessionConfiguration)
                guard register(session) else {
                    try? await outbound.write(ByteBuffer(bytes: SyncMessage.goodbye(reason: "duplicate connection").encoded()))
                    return
                }
                defer { unregister(session) }
                logger.info("peer connected", metadata: peerMetadata(peer).merging(["initiator": "\(initiator)"]) { $1 })
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
            logger.info("pairing connection ended", metadata: ["reason": "\(NetError.describe(error))"])
        }
    }
}
