import Foundation
import HubSyncCrypto
import HubSyncNet
import Synchronization

/// A repository kept by a paired device (the home server) in its data directory:
/// `peer:DEVICE-ID` (protocol/SPEC.md 5.12).
///
/// The peer is append-only: files are added, never replaced, except leases under `locks/`.
/// Removing anything else sends a prune plan signed with this device's identity; the peer moves
/// the files into a quarantine it keeps for days before freeing the space.
public final class PeerTarget: BackupTarget {
    public let device: DeviceID
    public let host: String
    public let port: Int
    let identity: SigningKey
    let connection = Mutex<BackupClient?>(nil)
    /// Files moved into quarantine by this target's prune plans, with the release time (Unix ms).
    let moved = Mutex<(names: [String], release: UInt64)>(([], 0))

    /// A target on `device`, whose agent listens at `host:port`; requests are signed in by `identity`.
    public init(device: DeviceID, host: String, port: Int, identity: SigningKey) {
        self.device = device
        self.host = host
        self.port = port
        self.identity = identity
    }

    public var description: String { "peer:\(device)" }

    /// The files this target's prune plans moved into quarantine, and when the peer frees them.
    public var quarantined: (names: [String], release: UInt64) { moved.withLock { $0 } }

    /// Runs one request on the open connection, connecting first when needed. A connection
    /// that broke since its last use (the peer restarted, or closed it after 300 s of silence) is
    /// dialed again once: every request is safe to repeat (puts never replace, plans skip what
    /// is gone). Blocks the calling thread, which must not be one of the cooperative pool's.
    func call(_ request: PeerProtocol.Request) throws(BackupError) -> [UInt8] {
        let peerText = "the peer \(device.short) at \(host):\(port)"
        let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let answer = connection.withLock { c -> Result<[UInt8], BackupError> in
            var attempts = c == nil ? 1 : 2
            while true {
                attempts -= 1
                var opening = c == nil
                do throws(BackupError) {
                    if c == nil {
                        let (client, hello) = try Self.transport(peerText, opening: true) {
                            try BackupClient.blocking { [identity, device] in
                                try await BackupClient.open(address: address, identity: identity, expected: device)
                            }
                        }
                        c = client
                        // The hello: ok, or why this device may not store backups there.
                        _ = try PeerProtocol.result(hello, from: peerText)
                    }
                    opening = false
                    let client = c!
                    let bytes = try Self.transport(peerText, opening: false) { try client.callBlocking(request.encoded()) }
                    return .success(Array(try PeerProtocol.result(bytes, from: peerText)))
                } catch {
                    guard error.code == .io else { return .failure(error) }
                    let wasOpen = c != nil && !opening
                    c?.close()
                    c = nil
                    if !wasOpen || attempts == 0 { return .failure(error) }
                }
            }
        }
        return try answer.get()
    }

    /// Runs a transport step, saying what its failure means for the person running the backup.
    static func transport<T>(_ peerText: String, opening: Bool, _ body: () throws -> T) throws(BackupError) -> T {
        do {
            return try body()
        } catch let e as NetError where e.code == .unexpectedPeer {
            throw BackupError(.refused, e.message)
        } catch let e as NetError where e.code == .timeout {
            throw BackupError(.io, "\(peerText) did not answer in time; what it stored already is kept; run the command again")
        } catch where opening {
            throw BackupError(.io, "\(peerText) is offline (\(NetError.describe(error))); start its agent (`hubsync run`) or "
                + "check its address in `hubsync peers`; nothing was stored or changed")
        } catch {
            throw BackupError(.io, "the connection to \(peerText) ended (\(NetError.describe(error))); it may not trust this "
                + "device (`hubsync peers add` there) or its agent stopped; what it stored already is kept")
        }
    }

    public func put(_ name: String, _ data: [UInt8], replacing: Bool) throws(BackupError) {
        var q = PeerProtocol.Request(.put, name)
        q.replacing = replacing
        q.data = data
        _ = try call(q)
    }

    public func get(_ name: String) throws(BackupError) -> [UInt8] {
        try call(PeerProtocol.Request(.get, name))
    }

    public func get(_ name: String, offset: Int, length: Int) throws(BackupError) -> [UInt8] {
        var q = PeerProtocol.Request(.range, name)
        q.offset = UInt64(offset)
        q.length = UInt32(length)
        return try call(q)
    }

    public func list(_ folder: String) throws(BackupError) -> [(name: String, size: Int)] {
        try PeerProtocol.decodeList(try call(PeerProtocol.Request(.list, folder)))
    }

    public func exists(_ name: String) throws(BackupError) -> Bool {
        try call(PeerProtocol.Request(.exists, name)).first == 1
    }

    public func delete(_ name: String) throws(BackupError) {
        try remove([name])
    }

    /// Leases go at once; anything else goes through one signed prune plan (into quarantine).
    public func remove(_ names: [String]) throws(BackupError) {
        for name in names where name.hasPrefix("locks/") { _ = try call(PeerProtocol.Request(.delete, name)) }
        let planned = names.filter { !$0.hasPrefix("locks/") }
        guard !planned.isEmpty else { return }
        let plan = PrunePlan(signer: identity.publicKey, server: device,
                             time: UInt64(Date().timeIntervalSince1970 * 1000), names: planned)
        var q = PeerProtocol.Request(.prune)
        q.data = plan.signed(by: identity)
        let answer = try PeerProtocol.decodeMoved(try call(q))
        moved.withLock { $0.names += answer.names; $0.release = max($0.release, answer.release) }
    }

    /// How much the peer stores for this device, its quota, and how much of it is in quarantine.
    public func usage() throws(BackupError) -> PeerProtocol.Usage {
        try PeerProtocol.Usage.decode(try call(PeerProtocol.Request(.usage)))
    }
}
