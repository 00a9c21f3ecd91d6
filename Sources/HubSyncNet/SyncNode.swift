import HubSyncBase
import Foundation
public import HubSyncCore
public import HubSyncCrypto
public import HubSyncStore
public import Logging
public import NIOCore
import NIOPosix
import Synchronization

/// Why a peer is or is not connected, for status.
public struct PeerStatus: Sendable {
    public var device: DeviceID
    public var address: String?
    public var connected = false
    /// When not connected: why (unreachable, refused: not trusted, handshake failed, clock skew, …).
    public var reason: String?
    public var lastSync: UInt64 = 0
    public var lastRepair: UInt64 = 0
    /// What the last repair round with this peer cost.
    public var lastRepairReport: RepairReport?
    /// The peer's sequence the last fast path asked for changes after (0: from the start).
    public var fastPathFrom: Int64?
    public var bytesSent = 0
    public var bytesReceived = 0
    public init(device: DeviceID) { self.device = device }
}

/// The sync side of an agent: listens for peers, dials the trusted ones it knows an address
/// for, keeps at most one session per peer, and reports each peer's status.
public final class SyncNode: SyncSessionDelegate, Sendable {
    public let identity: Identity
    let store: Store
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let sessions = Mutex<[DeviceID: SyncSession]>([:])
    let statuses = Mutex<[DeviceID: PeerStatus]>([:])
    /// Untrusted devices that tried to connect, with the time: status names them.
    let refused = Mutex<[DeviceID: UInt64]>([:])
    let listenAddress = Mutex<SocketAddress?>(nil)
    /// Signalled once the listener is bound.
    let listening = WakeBroadcast()
    /// Signalled whenever a session starts or ends, so dialers wait for events, not a timer.
    public let sessionChanges = WakeBroadcast()
    /// Serves pairing runs on the listener, when set (protocol/SPEC.md 4.2).
    let pairingDesk = Mutex<PairingDesk?>(nil)
    /// Serves backup connections on the listener, when set (protocol/SPEC.md 5.12).
    let backupHandler = Mutex<BackupHandler?>(nil)

    /// Lets the listener serve pairing runs with `desk` (nil: refuse them).
    public func servePairing(with desk: PairingDesk?) { pairingDesk.withLock { $0 = desk } }

    /// Ends the session with a device removed from the household: says goodbye, then closes
    /// the connection without waiting for the peer (a removed device may ignore the goodbye).
    public func closeSession(with peer: DeviceID) async {
        sessions.withLock { $0[peer] }?.close(reason: "removed from the household")
    }

    public init(identity: Identity, store: Store, logger: Logger, group: MultiThreadedEventLoopGroup = .singleton) {
        self.identity = identity
        self.store = store
        self.logger = logger
        self.group = group
    }

    /// The address the listener bound (port 0 is resolved), once listening.
    public var boundAddress: SocketAddress? { listenAddress.withLock { $0 } }

    /// The bound address, once the listener is bound; nil when the waiting task is cancelled.
    public func waitForBoundAddress() async -> SocketAddress? {
        let signal = listening.subscribe()
        defer { listening.unsubscribe(signal) }
        while true {
            if let address = boundAddress { return address }
            guard await signal.wait() else { return nil }
        }
    }

    // MARK: listening

    /// Binds the listener and serves connections until cancelled. `ready` gets the bound address.
    public func listen(host: String, port: Int, ready: @Sendable (SocketAddress) -> Void) async throws {
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configure(channel)
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
                    tasks.addTask { await self.serve(connection, initiator: false, expected: nil) }
                }
            }
        }
    }

    static func configure(_ channel: any Channel) throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
        return try NIOAsyncChannel(wrappingChannelSynchronously: channel,
                                   configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8)))
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

    /// Opens a framed TCP connection to `address` (HOST:PORT), giving up after 5 s.
    static func connect(to address: String, group: any EventLoopGroup) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        guard let (host, port) = split(address) else {
            throw NetError(.malformed, "peer address \(address) is not HOST:PORT")
        }
        return try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try configure(channel) }
            }
    }

    func dial(peer: DeviceID, address: String) async throws {
        let channel = try await Self.connect(to: address, group: group)
        await serve(channel, initiator: true, expected: peer)
    }

    /// Dials an address that discovery found, whoever answers there: the handshake refuses an
    /// untrusted device; a trusted one gets this address recorded as its last-known address (so
    /// it is dialled again without mDNS) and a session until it ends. Returns the device that
    /// answered and whether it was trusted; throws when nothing could be reached.
    public func dial(discovered address: String) async throws -> (device: DeviceID?, trusted: Bool) {
        let channel = try await Self.connect(to: address, group: group)
        return await serve(channel, initiator: true, expected: nil, discoveredAt: address)
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

    // MARK: sessions

    /// Handshake, trust check, then the sync session, on one connection.
    /// `discoveredAt`: the address discovery found this peer at, recorded once it is trusted.
    @discardableResult
    func serve(_ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, initiator: Bool, expected: DeviceID?,
               discoveredAt: String? = nil) async -> (device: DeviceID?, trusted: Bool) {
        let seen = Mutex<DeviceID?>(expected)
        let trustedPeer = Mutex(false)
        // A connection that does not finish its handshake in time is closed.
        let raw = channel.channel
        let deadline = Task {
            try await Deadlines.sleep(for: .seconds(10))
            raw.close(promise: nil)
        }
        do {
            try await channel.executeThenClose { inbound, outbound in
                let accept: (DeviceID) async throws -> Void = { [self] device in
                    seen.withLock { $0 = device }
                    if let expected, device != expected {
                        throw NetError(.unexpectedPeer, "expected device \(expected.short) at that address, found \(device.short)")
                    }
                    let trusted = try await store.read(.isTrusted(device))
                    guard trusted else {
                        refused.withLock { $0[device] = UInt64(Date().timeIntervalSince1970 * 1000) }
                        logger.warning("refused a device that is not trusted", metadata: ["peer.id": "\(device)"])
                        throw NetError(.untrusted, "device \(device) is not trusted; add it with `hubsync peers add \(device)`")
                    }
                    trustedPeer.withLock { $0 = true }
                    refused.withLock { _ = $0.removeValue(forKey: device) } // trusted since
                }
                let (peer, reader, writer): (DeviceID, SecureReader, SecureWriter)
                if initiator {
                    (peer, reader, writer) = try await SecureHandshake.initiate(
                        identity: identity.signingKey, inbound: inbound, outbound: outbound, accept: accept)
                } else {
                    // The first frame's first byte tells a pairing run from a session handshake.
                    var iterator = inbound.makeAsyncIterator()
                    let first = try await SecureHandshake.readFrame(&iterator)
                    if first.first == Pairing.firstByte {
                        guard let desk = pairingDesk.withLock({ $0 }) else {
                            try await outbound.write(ByteBuffer(bytes: PairingInviter.refusal(.unknownInvite)))
                            return
                        }
                        try await desk.serve(first: first, iterator: &iterator, outbound: outbound,
                                             remoteHost: raw.remoteAddress?.ipAddress)
                        deadline.cancel()
                        return
                    }
                    if first == [BackupChannel.firstByte, 1] {
                        // Not recorded as the sync peer: a backup connection's end says nothing about sync.
                        try await serveBackup(iterator: iterator, outbound: outbound, deadline: deadline)
                        return
                    }
                    (peer, reader, writer) = try await SecureHandshake.respond(
                        identity: identity.signingKey, message1: first, iterator: iterator, outbound: outbound, accept: accept)
                }
                deadline.cancel()
                if let discoveredAt, try await store.read(.peer(peer))?.address != discoveredAt {
                    _ = try await store.write(.addPeer(peer, address: discoveredAt))
                    logger.info("recorded a discovered address", metadata: ["peer.id": "\(peer.short)", "address": "\(discoveredAt)"])
                }
                let session = SyncSession(peer: peer, isInitiator: initiator, store: store, counters: writer.counters,
                                          logger: logger, delegate: self)
                guard register(session) else {
                    _ = try? await writer.send(.goodbye(reason: "duplicate connection"))
                    return
                }
                defer { unregister(session) }
                logger.info("peer connected", metadata: ["peer.id": "\(peer.short)", "initiator": "\(initiator)"])
                try await session.run(reader: reader, writer: writer)
            }
        } catch {
            deadline.cancel()
            if let peer = seen.withLock({ $0 }) {
                setStatus(peer) { $0.connected = false; $0.reason = Self.describe(error, address: "") }
            }
            logger.info("connection ended", metadata: ["peer.id": "\(seen.withLock { $0 }?.short ?? "?")", "reason": "\(error)"])
        }
        return (seen.withLock { $0 }, trustedPeer.withLock { $0 })
    }

    /// Keeps one session per peer: when both sides dialed, the connection opened by the device
    /// with the smaller ID wins, on both sides alike.
    func register(_ session: SyncSession) -> Bool {
        let kept = sessions.withLock { all -> Bool in
            if let existing = all[session.peer] {
                let preferredInitiator = min(identity.deviceID, session.peer)
                let newIsPreferred = (session.isInitiator ? identity.deviceID : session.peer) == preferredInitiator
                let oldIsPreferred = (existing.isInitiator ? identity.deviceID : existing.peer) == preferredInitiator
                if oldIsPreferred || !newIsPreferred { return false }
                existing.close(reason: "duplicate connection")
            }
            all[session.peer] = session
            return true
        }
        if kept {
            setStatus(session.peer) { $0.connected = true; $0.reason = nil }
            sessionChanges.signal()
        }
        return kept
    }

    func unregister(_ session: SyncSession) {
        let counters = session.counters
        sessions.withLock { all in
            if all[session.peer] === session { all.removeValue(forKey: session.peer) }
        }
        setStatus(session.peer) { s in
            s.bytesSent += counters.sent
            s.bytesReceived += counters.received
            if !self.sessions.withLock({ $0[session.peer] != nil }) {
                s.connected = false
                if s.reason == nil { s.reason = "disconnected" }
            }
        }
        sessionChanges.signal()
    }

    func setStatus(_ peer: DeviceID, _ change: (inout PeerStatus) -> Void) {
        statuses.withLock { all in
            var s = all[peer] ?? PeerStatus(device: peer)
            change(&s)
            all[peer] = s
        }
    }

    /// Every known peer's status, with live byte counts for connected ones.
    public func status() -> [PeerStatus] {
        let live = sessions.withLock { $0 }
        return statuses.withLock { all in
            all.values.map { s in
                var s = s
                if let session = live[s.device] {
                    s.connected = true
                    s.bytesSent += session.counters.sent
                    s.bytesReceived += session.counters.received
                }
                return s
            }
        }
    }

    /// Devices that tried to connect without being trusted, with when (Unix ms).
    public func refusedDevices() -> [DeviceID: UInt64] { refused.withLock { $0 } }

    /// Asks every session this agent dialed to run a repair round now.
    public func repairAll() async {
        for session in sessions.withLock({ Array($0.values) }) where session.isInitiator {
            session.startRepair()
        }
    }

    /// Ends the session with a peer (it was removed).
    public func disconnect(_ peer: DeviceID) async {
        sessions.withLock { $0[peer] }?.close(reason: "no longer trusted")
    }

    public func session(_ session: SyncSession, didRequestChangesAfter sequence: Int64, from peer: DeviceID) {
        setStatus(peer) { $0.fastPathFrom = sequence }
    }

    public func session(_ session: SyncSession, didCompleteFastPathFrom peer: DeviceID) {
        setStatus(peer) { $0.lastSync = UInt64(Date().timeIntervalSince1970 * 1000) }
    }

    public func session(_ session: SyncSession, didCompleteRepairWith peer: DeviceID, report: RepairReport) {
        setStatus(peer) {
            $0.lastRepair = UInt64(Date().timeIntervalSince1970 * 1000)
            $0.lastRepairReport = report
        }
        logger.info("repair round done", metadata: [
            "peer.id": "\(peer.short)", "sent": "\(report.itemsSent)", "received": "\(report.itemsReceived)",
            "round_trips": "\(report.roundTrips)", "bytes": "\(report.bytesSent + report.bytesReceived)",
        ])
    }
}

