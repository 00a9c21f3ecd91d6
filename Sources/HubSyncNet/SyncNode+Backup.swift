import HubSyncBase
import Foundation
public import HubSyncCrypto
import NIOCore

extension SyncNode {
    /// Serves one backup connection from a device on behalf of the repository it stores here.
    public typealias BackupHandler = @Sendable (_ client: DeviceID, _ channel: BackupChannel) async throws -> Void

    /// How long a backup connection may stay silent before the peer closes it.
    static let backupIdleTimeout: Duration = .seconds(300)
    /// Backup connections one device may have open at once (a client uses one per repository).
    static let maxBackupConnectionsPerDevice = 4

    /// Lets the listener serve backup connections with `handler` (nil: refuse them).
    public func serveBackups(with handler: BackupHandler?) { backupHandler.withLock { $0 = handler } }

    /// Closes every open backup connection of `peer` (removed, or no longer trusted): requests
    /// it sends after this are not served.
    func closeBackups(of peer: DeviceID) async {
        let open = backupChannels.withLock { Array(($0[peer] ?? [:]).values) }
        for channel in open { await channel.revoke() }
        if !open.isEmpty {
            logger.info("closed the backup connections of a device no longer trusted",
                        metadata: peerMetadata(peer).merging(["connections": "\(open.count)"]) { $1 })
        }
    }

    /// A backup connection after its handshake (the pipeline ran it as responder): the trust
    /// check answered in a sealed hello (`0x00`, or `0x03 ‖ reason`), then the handler.
    func serveBackup(_ channel: AuthenticatedChannel) async {
        guard let handler = backupHandler.withLock({ $0 }), let peer = channel.peer else { return await channel.close() }
        do {
            try await channel.executeThenClose { inbound, outbound in
                let backup = BackupChannel(inbound: inbound, outbound: outbound)
                let trusted = try await store.read(.isTrusted(peer))
                guard trusted else {
                    noteRefused(peer, "refused backups from a device that is not trusted")
                    try await backup.send([3] + Array(("device \(peer.short) is not trusted by \(identity.deviceID.short); "
                        + "pair the devices first (`hubsync pair`, or `hubsync peers add \(peer)` on that device)").utf8))
                    return
                }
                let admitted = backupConnections.withLock { open -> Bool in
                    guard open[peer, default: 0] < Self.maxBackupConnectionsPerDevice else { return false }
                    open[peer, default: 0] += 1
                    return true
                }
                guard admitted else {
                    try await backup.send([3] + Array(("device \(peer.short) already has \(Self.maxBackupConnectionsPerDevice) backup "
                        + "connections open to \(identity.deviceID.short); wait for one to end, or stop the other backups").utf8))
                    return
                }
                defer {
                    backupConnections.withLock { open in
                        open[peer, default: 1] -= 1
                        if open[peer] == 0 { open[peer] = nil }
                    }
                }
                try await backup.send([0])
                logger.info("backup connection", metadata: peerMetadata(peer))
                let key = ObjectIdentifier(backup)
                backupChannels.withLock { $0[peer, default: [:]][key] = backup }
                defer { backupChannels.withLock { $0[peer]?[key] = nil; if $0[peer]?.isEmpty == true { $0[peer] = nil } } }
                // Trust may have gone between the check and the registration: check again.
                guard try await store.read(.isTrusted(peer)) else { return }
                // A client that sends nothing for `backupIdleTimeout` loses its connection.
                let watchdog = Task {
                    while !Task.isCancelled {
                        try await Deadlines.sleep(for: .seconds(10))
                        if backup.idle > Self.backupIdleTimeout { await backup.close(); return }
                    }
                }
                defer { watchdog.cancel() }
                try await handler(peer, backup)
            }
        } catch {
            // Not recorded as the sync peer's status: a backup connection's end says nothing about sync.
            logger.info("backup connection ended", metadata: peerMetadata(peer).merging(["reason": "\(NetError.describe(error))"]) { $1 })
        }
    }
}
