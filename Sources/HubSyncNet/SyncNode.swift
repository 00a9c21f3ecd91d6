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
    /// Repair rounds completed with this peer since the agent started, and their bytes.
    public var repairRounds = 0
    public var repairBytesSent = 0
    public var repairBytesReceived = 0
    /// The peer's sequence the last fast path asked for changes after (0: from the start).
    public var fastPathFrom: Int64?
    public var bytesSent = 0
    public var bytesReceived = 0
    /// Records this side could not send to the peer, or merge from it, in its current session,
    /// with the reason (the others went on; each is tried again at the next repair round).
    public var undelivered: [RecordKey: String] = [:]
    /// For each of those, the number of repair rounds completed when it was last reported: one
    /// not reported again by the end of the next round is gone from the list (it went through,
    /// or is no longer offered).
    var undeliveredAt: [RecordKey: Int] = [:]
    /// Whether the last session ended on a store failure, here or on the peer (a full disk, a
    /// damaged store): the dialer then waits at least 10 s before trying again, since a new
    /// session would only re-send what cannot be kept.
    public var storeTrouble = false
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
    /// Untrusted devices that tried to connect, with the time: status names the latest 64.
    let refused = Mutex(RefusedDevices())
    /// How many connections were refused as untrusted since the start (for metrics).
    let refusedTotal = Atomic<Int>(0)
    public var refusedCount: Int { refusedTotal.load(ordering: .relaxed) }
    /// Accepted connections whose handshake has not ended, by remote address: at most
    /// ``maxHandshakesPerAddress`` from one address (so one host cannot crowd out pairing or
    /// another peer) and ``maxHandshakesInProgress`` in all.
    let handshakesInProgress = Mutex<[String: Int]>([:])
    static let maxHandshakesPerAddress = 32
    static let maxHandshakesInProgress = 1024
    let listenAddress = Mutex<SocketAddress?>(nil)
    /// Signalled once the listener is bound.
    let listening = WakeBroadcast()
    /// Signalled whenever a session starts or ends, so dialers wait for events, not a timer.
    public let sessionChanges = WakeBroadcast()
    /// Serves pairing runs on the listener, when set (protocol/SPEC.md 4.2).
    let pairingDesk = Mutex<PairingDesk?>(nil)
    /// Serves backup connections on the listener, when set (protocol/SPEC.md 5.12).
    let backupHandler = Mutex<BackupHandler?>(nil)
    /// Open backup connections by client, so a removal closes them at once (SPEC 4.8).
    let backupChannels = Mutex<[DeviceID: [ObjectIdentifier: BackupChannel]]>([:])
    /// Open backup connections per device: at most ``maxBackupConnectionsPerDevice`` each, so a
    /// trusted device cannot make the storing peer hold messages on many connections at once.
    let backupConnections = Mutex<[DeviceID: Int]>([:])
    /// Checks what peers send before it is merged (the agent's audit journal), when set.
    let screen = Mutex<(@Sendable ([RecordState], DeviceID) async -> [RecordKey: String])?>(nil)
    /// Names the records held back from a peer, when set.
    let heldBack = Mutex<(@Sendable (DeviceID) -> HeldBack?)?>(nil)
    /// Limits and capabilities of every session (tests give a peer fewer capabilities).
    let sessionConfiguration: SyncSessionStateMachine.Configuration
    /// Peers' names (verified and cleaned by the agent), for the log.
    let peerNames = Mutex<[DeviceID: String]>([:])

    /// Gives the log the peers' names (`peer.name` beside `peer.id`). A name learned or changed
    /// gets a line of its own, so a session that began before its peer's name arrived (the first
    /// one after pairing) is tied to the name in the log too.
    public func setPeerNames(_ names: [DeviceID: String]) {
        let old = peerNames.withLock { old in
            defer { old = names }
            return old
        }
        for (peer, name) in names.sorted(by: { $0.key < $1.key }) where old[peer] != name && peer != identity.deviceID {
            logger.info("a device's name is known", metadata: peerMetadata(peer).merging(["previous.name": "\(old[peer] ?? "none")"]) { $1 })
        }
    }

    /// A peer's log metadata: its short ID and, when known, its name. Every log line that
    /// speaks of a peer carries it, so a person reading the log sees which device it was.
    public func peerMetadata(_ peer: DeviceID?) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["peer.id": "\(peer?.short ?? "?")"]
        if let peer, let name = peerNames.withLock({ $0[peer] }) { metadata["peer.name"] = "\(name)" }
        return metadata
    }

    /// Has `screen` check every batch of states a peer sends: those it names are not stored,
    /// and are reported as not merged with its reason.
    public func screenIncoming(with screen: (@Sendable ([RecordState], DeviceID) async -> [RecordKey: String])?) {
        self.screen.withLock { $0 = screen }
    }

    public func session(_ session: SyncSession, screen states: [RecordState], from peer: DeviceID) async -> [RecordKey: String] {
        guard let screen = screen.withLock({ $0 }) else { return [:] }
        return await screen(states, peer)
    }

    /// Has `rule` name, for a peer, the records held back from it (never sent, left out of
    /// repair rounds), asked before each read of records for it.
    public func holdBack(with rule: (@Sendable (DeviceID) -> HeldBack?)?) {
        heldBack.withLock { $0 = rule }
    }

    public func session(_ session: SyncSession, heldBackFrom peer: DeviceID) -> HeldBack? {
        heldBack.withLock { $0 }?(peer)
    }

    /// Lets the listener serve pairing runs with `desk` (nil: refuse them).
    public func servePairing(with desk: PairingDesk?) { pairingDesk.withLock { $0 = desk } }

    /// Ends the session with a device removed from the household: says goodbye, then closes
    /// the connection without waiting for the peer (a removed device may ignore the goodbye).
    public func closeSession(with peer: DeviceID, sending states: [RecordState] = []) async {
        sessions.withLock { $0[peer] }?.close(reason: "removed from the household", sending: states)
        await closeBackups(of: peer)
    }

    public init(identity: Identity, store: Store, logger: Logger, group: MultiThreadedEventLoopGroup = .singleton,
                sessionConfiguration: SyncSessionStateMachine.Configuration = .init()) {
        self.identity = identity
        self.store = store
        self.logger = logger
        self.group = group
        self.sessionConfiguration = sessionConfiguration
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
            setStatus(session.peer) { $0.connected = true; $0.reason = nil; $0.undelivered = [:]; $0.undeliveredAt = [:] }
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
    public func refusedDevices() -> [DeviceID: UInt64] { refused.withLock { $0.entries } }

    /// Records a refused device for status, and logs it unless many were logged just now.
    func noteRefused(_ device: DeviceID, _ what: String) {
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        refusedTotal.add(1, ordering: .relaxed)
        guard let count = refused.withLock({ $0.record(device, at: now) }) else { return }
        // The whole ID too: a person who means to trust that device adds it by it.
        logger.warning("\(what)", metadata: peerMetadata(device).merging(["peer.device_id": "\(device)", "refused": "\(count)"]) { $1 })
    }

    /// Asks every session this agent dialed to run a repair round now (the repair timer); with
    /// `askingPeers`, each session the peer dialed also asks that peer to run one (`repairAsk`,
    /// when the peer takes it: Sync now). Answers the peers a round was asked of.
    @discardableResult
    public func repairAll(askingPeers: Bool = false) async -> [DeviceID] {
        var started: [DeviceID] = []
        for (peer, session) in sessions.withLock({ Array($0) }) where session.isInitiator || askingPeers && session.repairsOnRequest {
            session.startRepair()
            started.append(peer)
        }
        return started
    }

    /// Ends the session with a peer (it was removed).
    public func disconnect(_ peer: DeviceID) async {
        sessions.withLock { $0[peer] }?.close(reason: "no longer trusted")
        await closeBackups(of: peer)
    }

    public func session(_ session: SyncSession, didRequestChangesAfter sequence: Int64, from peer: DeviceID) {
        setStatus(peer) { $0.fastPathFrom = sequence }
    }

    public func session(_ session: SyncSession, didCompleteFastPathFrom peer: DeviceID) {
        setStatus(peer) { $0.lastSync = UInt64(Date().timeIntervalSince1970 * 1000) }
    }

    public func session(_ session: SyncSession, couldNotDeliver key: RecordKey, to peer: DeviceID, reason: String) {
        setStatus(peer) {
            $0.undelivered[key] = reason
            $0.undeliveredAt[key] = $0.repairRounds
        }
    }

    public func session(_ session: SyncSession, didCompleteRepairWith peer: DeviceID, report: RepairReport) {
        setStatus(peer) {
            $0.lastRepair = UInt64(Date().timeIntervalSince1970 * 1000)
            $0.lastRepairReport = report
            // A record refused or unsent before this round, and not again in it, is off the list.
            for (key, round) in $0.undeliveredAt where round < $0.repairRounds {
                $0.undelivered[key] = nil
                $0.undeliveredAt[key] = nil
            }
            $0.repairRounds += 1
            $0.repairBytesSent += report.bytesSent
            $0.repairBytesReceived += report.bytesReceived
        }
        logger.info("repair round done", metadata: peerMetadata(peer).merging([
            "sent": "\(report.itemsSent)", "received": "\(report.itemsReceived)",
            "round_trips": "\(report.roundTrips)", "bytes": "\(report.bytesSent + report.bytesReceived)",
        ]) { $1 })
    }
}

